"""Enterprises as the market regulator and the emergency bureau know them, their hazards and orders."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ...catalog import get_feed
from ..common import day_start_utc, end_of_day, local_dates, seconds_into_day
from .base import DayOutput, SimContext, conform, generator

HAZARD_WINDOW_DAYS = 30  # a hazard is rectified within this many days of being found, or stays open


@generator("enterprise_registry")
def enterprise_registry(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("enterprise_registry")
    ents = ctx.world.enterprises.copy()
    rng = ctx.rng(feed.name, None, "status")
    ents["status"] = rng.choice(
        ["operating", "suspended", "deregistered"], size=len(ents), p=[0.95, 0.03, 0.02]
    )
    ents.loc[ents["metered"], "status"] = "operating"
    ents["updated_at"] = ctx.world.touch_times(feed.name, len(ents), day)
    return DayOutput(conform(feed, ents))


@generator("enterprise_safety_profiles")
def enterprise_safety_profiles(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("enterprise_safety_profiles")
    # a few metered enterprises have no profile on file: their contracted capacity is unknown (the
    # contract requires one on every profile, so they are missing, not blank)
    ents = ctx.world.metered[
        ~ctx.world.metered["enterprise_id"].isin(ctx.world.no_capacity_enterprises)
    ].copy()
    rng = ctx.rng(feed.name, None, "inspected")
    ents["contracted_capacity_kw"] = ents["capacity_kw"]
    # a profile changes when it is updated: its last inspection is dated from that update, not from today
    ents["updated_at"] = ctx.world.touch_times(feed.name, len(ents), day)
    ents["last_inspected_on"] = [
        touched - dt.timedelta(days=int(x))
        for touched, x in zip(local_dates(ents["updated_at"]), rng.integers(5, 720, len(ents)), strict=True)
    ]
    return DayOutput(conform(feed, ents))


@generator("production_suspension_orders")
def production_suspension_orders(ctx: SimContext, day: dt.date) -> DayOutput:
    """Orders issued by the end of ``day``; an order's end shows only once it has been lifted."""
    feed = get_feed("production_suspension_orders")
    orders = ctx.world.suspension_orders
    end = day_start_utc(day + dt.timedelta(days=1))
    issued = orders[orders["issued_at"] < end].copy()
    recent = issued["effective_to"] > end - pd.Timedelta(days=120)
    issued = issued[recent]
    lifted = issued["effective_to"] < end
    issued["updated_at"] = issued["issued_at"].where(~lifted, issued["effective_to"])
    issued["effective_to"] = issued["effective_to"].where(lifted)
    return DayOutput(conform(feed, issued))


def _hazards_found(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """Hazards found on ``day`` with the (future) day each gets rectified and closed."""
    rng = ctx.rng("hazard_inspections", day, "found")
    metered = ctx.world.metered
    n = int(rng.poisson(max(1.0, 180 * ctx.scale)))
    weight = np.where(metered["is_major_hazard_source"], 6.0, 1.0)
    k = rng.choice(len(metered), size=n, p=weight / weight.sum())
    found = seconds_into_day(day, np.sort(rng.uniform(8.5 * 3600, 17.5 * 3600, n)))
    major = rng.random(n) < np.where(metered["is_major_hazard_source"].to_numpy()[k], 0.25, 0.03)
    rectify_after = rng.integers(0, HAZARD_WINDOW_DAYS + 10, n)  # days; beyond the window: never rectified
    descriptions = {
        "electrical": "配电箱私拉乱接、线路老化",
        "fire": "消防通道堵塞、灭火器过期",
        "chemical": "危化品超量存放",
        "equipment": "特种设备未按期检验",
        "structural": "厂房墙体开裂",
        "management": "安全培训记录缺失",
    }
    category = rng.choice(list(descriptions), size=n, p=[0.3, 0.25, 0.08, 0.12, 0.05, 0.2])
    return pd.DataFrame(
        {
            "hazard_id": [f"HZ{day:%Y%m%d}{j:04d}" for j in range(1, n + 1)],
            "enterprise_id": metered["enterprise_id"].to_numpy()[k],
            "found_at": found,
            "hazard_level": np.where(major, "major", "general"),
            "category": category,
            "description": [descriptions[c] for c in category],
            "rectification_due_on": [
                day + dt.timedelta(days=int(x)) for x in np.where(major, 30, rng.integers(7, 21, n))
            ],
            "rectify_after": rectify_after,
            "rectified_second": rng.uniform(9 * 3600, 17 * 3600, n),
        }
    )


@generator("hazard_inspections")
def hazard_inspections(ctx: SimContext, day: dt.date) -> DayOutput:
    """Today's new hazards, plus earlier hazards whose rectification or closing happened today."""
    feed = get_feed("hazard_inspections")
    parts = []
    for back in range(HAZARD_WINDOW_DAYS + 3):
        found_day = day - dt.timedelta(days=back)
        hz = _hazards_found(ctx, found_day)
        rectified_day = hz["rectify_after"].to_numpy()
        rectified_day = np.where(rectified_day <= HAZARD_WINDOW_DAYS, rectified_day, 10_000)
        never = rectified_day >= 10_000
        offset = pd.to_timedelta(np.where(never, 0, rectified_day), unit="D") + pd.to_timedelta(
            np.floor(hz["rectified_second"].to_numpy()), unit="s"
        )
        found_at = pd.DatetimeIndex(hz["found_at"])
        rectify_at = pd.DatetimeIndex(day_start_utc(found_day) + offset)
        rectify_at = rectify_at.where(np.asarray(rectify_at > found_at), found_at + pd.Timedelta(hours=1))
        rectify_at = rectify_at.where(~never)
        if back == 0:
            mask = np.ones(len(hz), dtype=bool)
        else:
            mask = (rectified_day == back) | (rectified_day + 2 == back)
        hz = hz[mask].copy()
        rectify_at = rectify_at[mask]
        done = np.asarray(rectify_at < day_start_utc(day + dt.timedelta(days=1)))
        closed = np.asarray(rectified_day[mask] + 2 <= back)
        hz["rectified_at"] = rectify_at.where(done)
        hz["status"] = np.where(closed, "closed", np.where(done, "rectified", "open"))
        changed = pd.DatetimeIndex(hz["rectified_at"]).where(done, hz["found_at"])
        hz["updated_at"] = np.where(closed, changed + pd.Timedelta(days=2), changed)
        parts.append(hz)
    frame = pd.concat(parts, ignore_index=True)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    end = end_of_day(day)
    frame["updated_at"] = frame["updated_at"].where(frame["updated_at"] <= end, end)
    return DayOutput(conform(feed, frame))
