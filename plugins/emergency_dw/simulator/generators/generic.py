"""Generators for the feeds whose realism comes from their columns' declarations.

A value is drawn from what the catalog says of its column (type, allowed values, range, personal data,
town, coordinates) and from the feed's shape: a snapshot of entities, a series of entity readings
(primary key ``(entity_id, <time>)``) or a stream of events. Feeds with their own logic register their
own generator; ``generic_day`` serves every feed that has none.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ...catalog import Feed, get_feed
from ..common import (
    day_start_utc,
    diurnal_seconds,
    end_of_day,
    id_numbers,
    jitter,
    local_dates,
    person_names,
    phones,
    scaled,
    seconds_into_day,
)
from ..world import TOWN_CODES, TOWN_LAT, TOWN_LON, TOWN_NAMES, TOWN_WEIGHTS
from .base import DayOutput, SimContext, conform, generator

NOUN = "点"  # a site: the end of a made-up name when the feed declares no name_noun_zh
ROADS = list("人民解放建设新华中山江滨环城府前学府工业")


def _prefix(feed: Feed, column: str) -> str:
    stem = column.removesuffix("_id")
    return "".join(part[0] for part in stem.split("_")).upper() + feed.name[:2].upper()


def _shape(feed: Feed) -> str:
    if feed.snapshot:
        return "snapshot"
    if len(feed.primary_key) == 2 and feed.primary_key[1] == feed.event_time:
        return "series"
    return "events"


def _numbers(rng: np.random.Generator, col, n: int) -> np.ndarray:
    lo = col.min if col.min is not None else 0.0
    hi = col.max if col.max is not None else lo + 1000.0
    top = lo + (hi - lo) * (1.0 if col.name.endswith("year") else 0.3)
    if col.type == "integer":
        return rng.integers(int(lo), int(top) + 1, size=n)
    return np.round(rng.uniform(lo, top, size=n), 2)


def generic_day(ctx: SimContext, day: dt.date, feed: Feed) -> DayOutput:
    shape = _shape(feed)
    static = ctx.rng(feed.name, None, "entities")
    daily = ctx.rng(feed.name, day, "values")
    if shape == "snapshot":
        n = scaled(feed.rows_per_day, ctx.scale, minimum=5) if feed.rows_per_day > 500 else feed.rows_per_day
        rng = static
    elif shape == "series":
        entities = max(2, scaled(feed.rows_per_day // 24, ctx.scale))
        n = entities * 24
        rng = daily
    else:
        n = int(daily.poisson(max(1.0, feed.rows_per_day * ctx.scale)))
        rng = daily
    town_idx = (static if shape != "events" else daily).choice(
        len(TOWN_CODES), size=n if shape != "series" else entities, p=TOWN_WEIGHTS
    )
    if shape == "series":
        town_idx = np.repeat(town_idx, 24)
    data: dict[str, object] = {}
    times: dict[str, pd.DatetimeIndex] = {}
    touched = ctx.world.touch_times(feed.name, n, day) if shape == "snapshot" else None
    enterprises = ctx.world.enterprises["enterprise_id"].to_numpy()
    for col in feed.columns:
        name = col.name
        if name == "updated_at":
            continue
        if name in feed.primary_key and col.type == "string":
            if shape == "series":
                ids = [f"{_prefix(feed, name)}{k:05d}" for k in range(1, entities + 1)]
                data[name] = np.repeat(ids, 24)
            elif shape == "snapshot":
                data[name] = [f"{_prefix(feed, name)}{k:06d}" for k in range(1, n + 1)]
            else:
                data[name] = [f"{_prefix(feed, name)}{day:%Y%m%d}{k:05d}" for k in range(1, n + 1)]
        elif name == "enterprise_id":
            data[name] = enterprises[static.integers(0, len(enterprises), n)]
        elif name == "town_code":
            data[name] = TOWN_CODES[town_idx]
        elif name in ("lat", "start_lat", "base_lat", "site_lat"):
            data[name] = jitter(rng, TOWN_LAT[town_idx], 3.0)
        elif name in ("lon", "start_lon", "base_lon", "site_lon"):
            data[name] = jitter(rng, TOWN_LON[town_idx], 3.0)
        elif col.allowed:
            data[name] = rng.choice(np.array(col.allowed), size=n)
        elif col.pii and "phone" in name:
            data[name] = phones(rng, n)
        elif col.pii and "id_number" in name:
            data[name] = id_numbers(rng, n)
        elif col.pii:
            data[name] = person_names(rng, n)
        elif col.type in ("integer", "float"):
            data[name] = _numbers(rng, col, n)
        elif col.type == "boolean":
            data[name] = rng.random(n) < 0.3
        elif col.type == "date":
            # a snapshot record's dates move only when the record changes (when its updated_at does)
            anchors = local_dates(touched) if shape == "snapshot" else [day] * n
            data[name] = [
                a - dt.timedelta(days=int(x))
                for a, x in zip(anchors, rng.integers(-400, 3000, n), strict=True)
            ]
        elif col.type == "timestamp":
            if name == feed.event_time and shape == "series":
                data[name] = day_start_utc(day) + pd.to_timedelta(np.tile(np.arange(24), entities), unit="h")
            elif name == feed.event_time:
                data[name] = seconds_into_day(day, diurnal_seconds(rng, n))
            else:
                earlier = next((a for a, b in feed.time_order if b == name), None)
                base = times.get(earlier) if earlier else None
                if base is None:
                    base = seconds_into_day(day, rng.uniform(0, 86_400, n))
                later = base + pd.to_timedelta(np.round(rng.lognormal(np.log(3600), 1.0, n)), unit="s")
                if col.nullable:
                    later = later.where(rng.random(n) > 0.2)
                data[name] = later
            times[name] = pd.DatetimeIndex(data[name])
        elif name in ("name", "enterprise_name", "road_name"):
            noun = feed.name_noun_zh or NOUN
            data[name] = [
                f"{TOWN_NAMES[t]}{ROADS[k % len(ROADS)]}{noun}{k + 1}" for k, t in enumerate(town_idx)
            ]
        elif name.endswith(("_no", "uscc")):
            data[name] = [f"{_prefix(feed, name)}{x:010d}" for x in rng.integers(0, 10**10, n)]
        else:
            data[name] = [
                f"{TOWN_NAMES[t]}{ROADS[x % len(ROADS)]}路{x % 300 + 1}号"
                for t, x in zip(town_idx, rng.integers(0, 10**6, n), strict=True)
            ]
    frame = pd.DataFrame(data)
    if shape == "snapshot":
        frame["updated_at"] = touched
    else:
        event = pd.DatetimeIndex(frame[feed.event_time])
        latest = event
        for name, stamps in times.items():
            latest = latest.where(~np.asarray(stamps > latest), stamps) if name != feed.event_time else latest
        lag = pd.to_timedelta(rng.integers(30, 900, n), unit="s")
        end = end_of_day(day)
        updated = latest + lag
        frame["updated_at"] = updated.where(updated <= end, end)
    if feed.event_time and shape == "events":
        frame = frame.sort_values(feed.event_time, kind="stable")
    return DayOutput(conform(feed, frame))


@generator("reservoir_levels")
def reservoir_levels(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("reservoir_levels")
    out = generic_day(ctx, day, feed).frame
    static = ctx.rng(feed.name, None, "limits")
    reservoirs = out["reservoir_id"].unique()
    limit = dict(zip(reservoirs, np.round(static.uniform(8, 120, len(reservoirs)), 2), strict=True))
    ponds = dict(zip(reservoirs, static.random(len(reservoirs)) < 0.6, strict=True))
    rng = ctx.rng(feed.name, day, "levels")
    out["flood_limit_level_m"] = out["reservoir_id"].map(limit).astype(float)
    out["is_mountain_pond"] = out["reservoir_id"].map(ponds).astype(bool)
    out["water_level_m"] = np.round(out["flood_limit_level_m"] * rng.uniform(0.75, 0.98, len(out)), 2)
    out["name"] = [
        f"{n[:2]}{'山塘' if p else '水库'}{r[-3:]}"
        for n, p, r in zip(out["name"], out["is_mountain_pond"], out["reservoir_id"], strict=True)
    ]
    return DayOutput(conform(feed, out))


@generator("town_population")
def town_population(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("town_population")
    rng = ctx.rng(feed.name, None, "population")
    resident = np.round(TOWN_WEIGHTS * 1_180_000 * rng.uniform(0.9, 1.1, len(TOWN_CODES))).astype(int)
    frame = pd.DataFrame(
        {
            "town_code": TOWN_CODES,
            "year": day.year - 1,
            "resident_population": resident,
            "registered_population": np.round(resident * rng.uniform(0.95, 1.25, len(resident))).astype(int),
            "households": np.round(resident / rng.uniform(2.6, 3.2, len(resident))).astype(int),
            "area_km2": np.round(rng.uniform(30, 180, len(resident)), 1),
        }
    )
    frame["updated_at"] = ctx.world.touch_times(feed.name, len(frame), day)
    return DayOutput(conform(feed, frame))


@generator("town_incident_reports")
def town_incident_reports(ctx: SimContext, day: dt.date) -> DayOutput:
    """Every town reports every day; small towns often report nothing but a nil return is not a row."""
    feed = get_feed("town_incident_reports")
    out = generic_day(ctx, day, feed).frame
    town_order = np.argsort(out["town_code"].to_numpy(), kind="stable")
    out = out.iloc[town_order].reset_index(drop=True)
    seq = out.groupby("town_code").cumcount() + 1
    out["report_id"] = [f"{t}-{day:%Y%m%d}-{k:03d}" for t, k in zip(out["town_code"], seq, strict=True)]
    rng = ctx.rng(feed.name, day, "losses")
    out["casualties"] = rng.poisson(0.2, len(out))
    out["economic_loss_10k_cny"] = np.round(rng.exponential(3.0, len(out)), 2)
    return DayOutput(conform(feed, out))
