"""The power warnings a grid task can be raised for: the anomalies injected into a day's load and cable
readings (their enterprise, rule and time), without generating the readings themselves.

The grid-task generator plans fifteen days of tasks on every day it delivers, so it asks for the same days'
warnings again and again; they are worked out once per world and day. They are what ``power_load_readings``
and ``cable_temperature_readings`` write to the truth (tests/test_sim_generators_domain.py holds them to
it): the steps below are the ones those generators take before their anomalies are fixed.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..common import day_start_utc
from ..power_events import inject_anomalies
from ..power_quality import meters_on, record_no_capacity, record_replacement
from .base import SimContext
from .power import SLOT, cable_events, start_power_day

WARNING_COLUMNS = ["enterprise_id", "rule", "started_at", "ended_at"]
_MEMO = "_power_warnings_by_day"  # kept on the world: the same seed, scale and scenario give the same days


def _load_anomalies(ctx: SimContext, day: dt.date) -> list[dict]:
    """The anomalies ``power_load_readings`` injects on ``day`` (the same steps, in the same order)."""
    ids, replaced, recently_replaced = meters_on(ctx, day)
    pday = start_power_day(ctx, day, ids, recently_replaced)
    meter_of_cable = ctx.world.cables["meter_index"].to_numpy()
    pday.used[[meter_of_cable[e.cable] for e in cable_events(ctx, day)]] = True
    record_no_capacity(pday)
    if replaced is not None:
        record_replacement(pday, replaced)
    inject_anomalies(pday)
    return pday.anomalies


def _cable_anomalies(ctx: SimContext, day: dt.date) -> list[dict]:
    """The over-temperature anomalies ``cable_temperature_readings`` puts on ``day``."""
    cables = ctx.world.cables
    first_slot = day_start_utc(day)
    out = []
    for event in cable_events(ctx, day):
        if event.hot:
            out.append(
                {
                    "enterprise_id": cables["enterprise_id"].iat[event.cable],
                    "rule": "cable_over_temperature",
                    "started_at": first_slot + SLOT * event.first,
                    "ended_at": first_slot + SLOT * (event.first + len(event.values) - 1),
                }
            )
    return out


def _warnings_of(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    records = [{c: a[c] for c in WARNING_COLUMNS} for a in _load_anomalies(ctx, day)]
    records += _cable_anomalies(ctx, day)
    frame = pd.DataFrame(records, columns=WARNING_COLUMNS)
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    order = np.lexsort((frame["enterprise_id"].to_numpy(dtype=str), frame["started_at"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def power_warnings(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """The day's injected power anomalies (``WARNING_COLUMNS``, by start), worked out once per world and day."""
    memo: dict[dt.date, pd.DataFrame] = vars(ctx.world).setdefault(_MEMO, {})
    if day not in memo:
        memo[day] = _warnings_of(ctx, day)
    return memo[day].copy()
