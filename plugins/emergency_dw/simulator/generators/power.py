"""Electricity load of the metered enterprises and their cables' temperature, with injected anomalies,
near misses and data problems, each written to its own truth file.

The normal load follows each enterprise's operating profile (load_profiles.py: five-day, six-day or
continuous, China's holiday calendar, sharp shift steps that move from day to day, a weather-like day
factor) with reading noise. It is not kind to the rules: a shift start is a 5-10x step within 15 minutes,
weekends and holidays are a fraction of a working day, the Spring Festival shuts most plants for weeks.
On top come the anomalies (power_events.py), the near misses the rules must let pass
(power_near_misses.py) and the data problems (power_quality.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import get_feed
from ..calendar import holiday_calendar
from ..common import day_start_utc, end_of_day, scaled
from ..load_profiles import HISTORY_DAYS, SLOTS, DayParams, LoadModel
from ..power_day import PowerDay
from ..power_events import inject_anomalies
from ..power_near_misses import inject_near_misses
from ..power_quality import (
    Replacement,
    inject_missing_readings,
    inject_outages,
    meters_on,
    record_no_capacity,
    record_replacement,
)
from .base import DayOutput, SimContext, conform, generator

SLOT = pd.Timedelta(minutes=15)


@dataclass
class LoadDay:
    """Expected (noise-free) load of every metered enterprise for one day."""

    model: LoadModel
    params: DayParams
    expected: np.ndarray  # (enterprises, 96) kW
    share: np.ndarray  # share of the enterprise's normal peak, (enterprises, 96)
    suspended: np.ndarray  # (enterprises, 96) bool: a suspension order is in force
    slot_starts: pd.DatetimeIndex  # 96 UTC timestamps


def load_model(ctx: SimContext) -> LoadModel:
    world = ctx.world
    return LoadModel(ctx.seed, ctx.scenario, world.operating_profiles, world.metered, holiday_calendar())


def _suspended(ctx: SimContext, starts: pd.DatetimeIndex, day: dt.date) -> np.ndarray:
    metered = ctx.world.metered
    suspended = np.zeros((len(metered), SLOTS), dtype=bool)
    index = pd.Index(metered["enterprise_id"])
    for row in ctx.world.suspended_on(day).itertuples():
        k = index.get_loc(row.enterprise_id)
        suspended[k] |= (starts >= row.effective_from) & (starts < row.effective_to)
    return suspended


def _suspension_recent(ctx: SimContext, day: dt.date) -> np.ndarray:
    """Enterprises with a suspension order in force at any time of the last 56 days or of ``day``."""
    orders = ctx.world.suspension_orders
    since = day_start_utc(day - dt.timedelta(days=HISTORY_DAYS))
    until = day_start_utc(day + dt.timedelta(days=1))
    recent = orders[(orders["effective_to"] > since) & (orders["effective_from"] < until)]
    return ctx.world.metered["enterprise_id"].isin(recent["enterprise_id"]).to_numpy()


def load_day(ctx: SimContext, day: dt.date) -> LoadDay:
    model = load_model(ctx)
    params = model.day_params(day)
    expected = model.expected(params)
    starts = pd.DatetimeIndex(day_start_utc(day) + SLOT * np.arange(SLOTS))
    suspended = _suspended(ctx, starts, day)
    standby = ctx.world.metered["capacity_kw"].to_numpy() * model.cols["standby"]
    expected = np.where(suspended, standby[:, None], expected)
    return LoadDay(model, params, expected, expected / model.peak_kw[:, None], suspended, starts)


def start_power_day(
    ctx: SimContext, day: dt.date, ids: np.ndarray, recently_replaced: np.ndarray
) -> PowerDay:
    """The day's normal load as read (with noise), before anything is injected; ``ids`` the meters of
    the day, ``recently_replaced`` the enterprises whose meter is new (power_quality.meters_on)."""
    ld = load_day(ctx, day)
    noise = ctx.scenario.power["noise"]
    factors = 1 + ctx.rng("power_load_readings", day, "noise").uniform(-noise, noise, ld.expected.shape)
    return PowerDay(
        ctx=ctx,
        day=day,
        model=ld.model,
        params=ld.params,
        expected=ld.expected,
        load=ld.expected * factors,
        suspended=ld.suspended,
        slot_starts=ld.slot_starts,
        noise_factors=factors,
        meter_ids=ids,
        recently_replaced=recently_replaced,
        suspension_recent=_suspension_recent(ctx, day),
        unsettled=ld.model.unsettled(day),
    )


def _tile(times: pd.DatetimeIndex, n: int) -> pd.DatetimeIndex:
    """``times`` repeated ``n`` times, tz-aware UTC."""
    naive = times.tz_convert("UTC").tz_localize(None).to_numpy()
    return pd.DatetimeIndex(np.tile(naive, n)).tz_localize("UTC")


def _readings(ctx: SimContext, pday: PowerDay, replaced: Replacement | None) -> pd.DataFrame:
    """The delivered readings: every meter's 96, less those not delivered; offline ones read 0."""
    n = len(pday.load)
    rng = ctx.rng("power_load_readings", pday.day, "electrical")
    capacity = pday.capacity
    nominal_v = np.where(capacity >= 800, 10_000.0, 380.0)
    voltage = nominal_v[:, None] * (1 + rng.uniform(-0.02, 0.02, size=pday.load.shape))
    load = np.where(pday.offline, 0.0, pday.load)
    voltage = np.where(pday.offline, 0.0, voltage)
    current = np.where(pday.offline, 0.0, load * 1000 / (np.sqrt(3) * np.maximum(voltage, 1.0) * 0.9))
    meter = np.repeat(pday.meter_ids.astype(object), SLOTS).reshape(n, SLOTS)
    if replaced is not None:
        meter[replaced.meter, : replaced.slot] = replaced.old_id
    lag = rng.integers(930, 1200, size=n * SLOTS)
    reading_at = _tile(pday.slot_starts, n)
    updated_at = reading_at + pd.to_timedelta(lag, unit="s")
    last = end_of_day(pday.day)
    keep = ~pday.missing.ravel()
    frame = pd.DataFrame(
        {
            "meter_id": meter.ravel()[keep],
            "enterprise_id": np.repeat(pday.enterprise_ids, SLOTS)[keep],
            "reading_at": reading_at[keep],
            "load_kw": np.round(load.ravel()[keep], 2),
            "current_a": np.round(current.ravel()[keep], 1),
            "voltage_v": np.round(voltage.ravel()[keep], 1),
            "updated_at": updated_at[keep].where(updated_at[keep] <= last, last),
        }
    )
    return frame


@generator("power_load_readings")
def power_load_readings(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("power_load_readings")
    ids, replaced, recently_replaced = meters_on(ctx, day)
    pday = start_power_day(ctx, day, ids, recently_replaced)
    meter_of_cable = ctx.world.cables["meter_index"].to_numpy()
    pday.used[[meter_of_cable[e.cable] for e in cable_events(ctx, day)]] = True
    record_no_capacity(pday)
    if replaced is not None:
        record_replacement(pday, replaced)
    inject_anomalies(pday)
    inject_near_misses(pday)
    inject_outages(pday)
    inject_missing_readings(pday)
    frame = _readings(ctx, pday, replaced)
    return DayOutput(
        conform(feed, frame),
        pday.anomalies,
        pday.protected.ravel()[~pday.missing.ravel()],
        near_misses=pday.near_misses,
        data_quality=pday.data_quality,
    )


def _cable_item(day: dt.date, starts: pd.DatetimeIndex, cables: pd.DataFrame, k: int, a: int, b: int) -> dict:
    """The fields a cable's anomaly and near miss share: slots [a, b] (both included)."""
    return {
        "enterprise_id": cables["enterprise_id"].iat[k],
        "subject_id": cables["cable_id"].iat[k],
        "started_at": starts[a],
        "ended_at": starts[b],
    }


def _cable_temperatures(ctx: SimContext, day: dt.date, ld: LoadDay) -> np.ndarray:
    """Normal sheath temperature: the trench's ambient (seasonal and daily), heating with the square
    of the load's share of its normal peak, sensor noise; never above ``normal_max_c``."""
    spec = ctx.scenario.cable
    cables = ctx.world.cables
    meter = cables["meter_index"].to_numpy()
    share = ld.share[meter]
    season = spec["seasonal_c"] * np.cos((day.timetuple().tm_yday - 205) / 365.25 * 2 * np.pi)
    daily = 3 * np.sin((np.arange(SLOTS)[None, :] - 36) / SLOTS * 2 * np.pi)
    ambient = cables["ambient_c"].to_numpy()[:, None] + season + daily
    noise = ctx.rng("cable_temperature_readings", day, "temperature").uniform(-1.0, 1.0, size=share.shape)
    temp = ambient + cables["rise_c"].to_numpy()[:, None] * share**2 + noise
    return np.minimum(temp, spec["normal_max_c"])


@dataclass(frozen=True)
class CableEvent:
    cable: int  # row of World.cables
    first: int  # slot
    values: np.ndarray  # temperatures from that slot on
    hot: bool  # an over-temperature anomaly (else a warm near miss)


def cable_events(ctx: SimContext, day: dt.date) -> list[CableEvent]:
    """The day's cable anomalies (>= 72 C for 30-120 minutes) and warm near misses (64-69 C for an
    hour), each on its own cable, none on an enterprise whose meter has no contracted capacity or is
    replaced today. Cheap and drawn first: the load's anomalies and near misses keep off these
    enterprises, so that no enterprise has two of them at once."""
    cables = ctx.world.cables
    spec = ctx.scenario.cable
    rng = ctx.rng("cable_temperature_readings", day, "events")
    hot_count = scaled(ctx.scenario.anomalies_per_day["cable_over_temperature"], ctx.scale)
    warm_count = scaled(spec["warm_near_miss_per_day"], ctx.scale)
    _, replaced, _ = meters_on(ctx, day)
    busy = set(ctx.world.no_capacity_enterprises)
    if replaced is not None:
        busy.add(ctx.world.metered["enterprise_id"].iat[replaced.meter])
    free = np.flatnonzero(~cables["enterprise_id"].isin(busy).to_numpy())
    picks = rng.permutation(free)[: hot_count + warm_count]
    events = []
    for k in picks[:hot_count]:
        lo, hi = spec["over_temperature_intervals"]
        length = int(rng.integers(lo, hi + 1))
        a = int(rng.integers(36, SLOTS - length - 1))
        hot = rng.uniform(*spec["over_temperature_c"])
        values = np.maximum(72.0, hot * (0.97 + 0.03 * np.minimum(1.0, (np.arange(length) + 1) / 2)))
        events.append(CableEvent(int(k), a, values, hot=True))
    for k in picks[hot_count:]:
        a = int(rng.integers(36, SLOTS - 6))
        events.append(CableEvent(int(k), a, rng.uniform(*spec["warm_near_miss_c"], 4), hot=False))
    return events


@generator("cable_temperature_readings")
def cable_temperature_readings(ctx: SimContext, day: dt.date) -> DayOutput:
    """Normal temperatures with the day's cable events (``cable_events``)."""
    feed = get_feed(cable_temperature_readings.__name__)
    cables = ctx.world.cables
    ld = load_day(ctx, day)
    temp = _cable_temperatures(ctx, day, ld)
    touched = np.zeros_like(temp, dtype=bool)
    truth, near_misses = [], []
    for event in cable_events(ctx, day):
        k, a, b = event.cable, event.first, event.first + len(event.values)
        temp[k, a:b] = event.values
        touched[k, a - 1 : b + 1] = True
        item = _cable_item(day, ld.slot_starts, cables, k, a, b - 1)
        if event.hot:
            temp[k, a - 1] = min(69.4, max(temp[k, a - 1], (temp[k, a - 1] + 72.0) / 2))  # warming up
            truth.append(
                {
                    "anomaly_id": f"{day:%Y%m%d}-cable_over_temperature-{len(truth):03d}",
                    "rule": "cable_over_temperature",
                    "feed": feed.name,
                    **item,
                    "intervals": b - a,
                    "peak_value": round(float(event.values.max()), 2),
                    "threshold": 70.0,
                    "unit": "°C",
                }
            )
        else:
            detail = f"up to {event.values.max():.1f} C for an hour"
            near_misses.append({"kind": "warm_cable", **item, "detail": detail})
    n = len(cables)
    reading_at = _tile(ld.slot_starts, n)
    last = end_of_day(day)
    late = reading_at + pd.Timedelta(seconds=960)
    frame = pd.DataFrame(
        {
            "cable_id": np.repeat(cables["cable_id"].to_numpy(), SLOTS),
            "enterprise_id": np.repeat(cables["enterprise_id"].to_numpy(), SLOTS),
            "reading_at": reading_at,
            "temperature_c": np.round(temp.ravel(), 1),
            "updated_at": late.where(late <= last, last),
        }
    )
    return DayOutput(conform(feed, frame), truth, touched.ravel(), near_misses=near_misses)
