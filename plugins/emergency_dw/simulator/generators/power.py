"""Electricity load of the metered enterprises and their cables' temperature, with injected anomalies.

Normal load follows each enterprise's shift pattern (continuous, two shifts, day shift) with geometric
ramps, a mild weekend dip, a day-level drift and bounded reading noise, so that normal data never trips
the anomaly rules of DESIGN section 5; the anomalies are injected where the rules should fire and are
written to the ground truth with their start, end and peak.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import get_feed
from ..common import day_start_utc, end_of_day, scaled
from .base import DayOutput, SimContext, conform, generator

SLOTS = 96
SLOT = pd.Timedelta(minutes=15)


@dataclass
class LoadDay:
    """Expected (noise-free) load of every metered enterprise for one day, in kW."""

    expected: np.ndarray  # (enterprises, 96)
    level: np.ndarray  # share of the enterprise's normal peak, (enterprises, 96)
    suspended: np.ndarray  # (enterprises, 96) bool: a suspension order is in force
    suspended_all_day: np.ndarray  # (enterprises,) bool
    slot_starts: pd.DatetimeIndex  # 96 UTC timestamps


def _shapes(ctx: SimContext) -> tuple[np.ndarray, np.ndarray]:
    """Shift start and end slot of every metered enterprise (date-independent)."""
    metered = ctx.world.metered
    rng = ctx.rng("power_load_readings", None, "shift-times")
    shift = metered["shift"].to_numpy()
    start = np.where(shift == "two_shift", 24, 30) + rng.integers(-2, 3, len(metered))
    end = np.where(shift == "two_shift", 88, 70) + rng.integers(-2, 3, len(metered))
    return start, end


def _levels(ctx: SimContext) -> np.ndarray:
    """Share of normal peak in each slot of a weekday, per enterprise."""
    metered = ctx.world.metered
    ramp = int(ctx.scenario.power["ramp_slots"])
    night = metered["night_fraction"].to_numpy()[:, None]
    shift = metered["shift"].to_numpy()
    start, end = _shapes(ctx)
    slot = np.arange(SLOTS)[None, :]
    # Geometric ramps: each step multiplies the load by (1/night)^(1/ramp), far below a 2x surge.
    up = np.clip((slot - start[:, None] + 1) / ramp, 0, 1)
    down = np.clip((end[:, None] - slot) / ramp, 0, 1)
    level = night ** (1 - np.minimum(up, down))
    lunch = (shift == "day_shift")[:, None] & (slot >= 48) & (slot < 52)
    level = np.where(lunch, level * 0.85, level)
    continuous = shift == "continuous"
    wave = night + (1 - night) * (0.5 + 0.5 * np.sin((slot - 30) / SLOTS * 2 * np.pi))
    return np.where(continuous[:, None], wave, level)


def load_day(ctx: SimContext, day: dt.date) -> LoadDay:
    metered = ctx.world.metered
    rng = ctx.rng("power_load_readings", day, "day-level")
    level = _levels(ctx)
    if day.weekday() >= 5:
        level = level * metered["weekend_factor"].to_numpy()[:, None]
    drift = 1 + rng.uniform(-1, 1, len(metered)) * ctx.scenario.power["day_noise"]
    capacity = metered["capacity_kw"].to_numpy()
    expected = capacity[:, None] * metered["peak_fraction"].to_numpy()[:, None] * level * drift[:, None]
    starts = day_start_utc(day) + SLOT * np.arange(SLOTS)
    suspended = np.zeros_like(expected, dtype=bool)
    orders = ctx.world.suspended_on(day)
    index = pd.Index(metered["enterprise_id"])
    for row in orders.itertuples():
        k = index.get_loc(row.enterprise_id)
        suspended[k] |= (starts >= row.effective_from) & (starts < row.effective_to)
    lo, hi = ctx.scenario.power["standby_fraction"]
    standby = capacity * ctx.rng("power_load_readings", None, "standby").uniform(lo, hi, len(metered))
    expected = np.where(suspended, standby[:, None], expected)
    return LoadDay(expected, level, suspended, suspended.all(axis=1), pd.DatetimeIndex(starts))


def _tile(times: pd.DatetimeIndex, n: int) -> pd.DatetimeIndex:
    """``times`` repeated ``n`` times, tz-aware UTC."""
    naive = times.tz_convert("UTC").tz_localize(None).to_numpy()
    return pd.DatetimeIndex(np.tile(naive, n)).tz_localize("UTC")


def _runs(mask_row: np.ndarray, length: int) -> np.ndarray:
    """Start slots of runs of ``length`` consecutive True values."""
    window = np.lib.stride_tricks.sliding_window_view(mask_row, length)
    return np.flatnonzero(window.all(axis=1))


def _anomaly(
    kind: str,
    day: dt.date,
    serial: int,
    enterprise_id: str,
    starts: pd.DatetimeIndex,
    a: int,
    b: int,
    peak: float,
    threshold: float,
    subject: str,
    unit: str,
) -> dict:
    return {
        "anomaly_id": f"{day:%Y%m%d}-{kind}-{serial:03d}",
        "rule": kind,
        "feed": "cable_temperature_readings" if kind == "cable_over_temperature" else "power_load_readings",
        "enterprise_id": enterprise_id,
        "subject_id": subject,
        "started_at": starts[a],
        "ended_at": starts[b - 1],
        "intervals": b - a,
        "peak_value": round(float(peak), 2),
        "threshold": round(float(threshold), 2),
        "unit": unit,
    }


def inject_load_anomalies(
    ctx: SimContext, day: dt.date, ld: LoadDay, load: np.ndarray
) -> tuple[list[dict], np.ndarray]:
    """Overwrite ``load`` where anomalies happen; returns the truth and the touched cells."""
    metered = ctx.world.metered
    rng = ctx.rng("power_load_readings", day, "anomalies")
    capacity = metered["capacity_kw"].to_numpy()
    peak_fraction = metered["peak_fraction"].to_numpy()
    shift = metered["shift"].to_numpy()
    ids = metered["enterprise_id"].to_numpy()
    meters = metered["meter_id"].to_numpy()
    counts = {k: scaled(v, ctx.scale) for k, v in ctx.scenario.anomalies_per_day.items()}
    touched = np.zeros_like(load, dtype=bool)
    used: set[int] = set()
    truth: list[dict] = []
    noise = ctx.scenario.power["noise"]
    reading_noise = 1 + rng.uniform(-noise, noise, size=load.shape)

    def pick(candidates: np.ndarray) -> int | None:
        free = [int(k) for k in candidates if int(k) not in used]
        if not free:
            return None
        k = int(rng.choice(free))
        used.add(k)
        return k

    active = ~ld.suspended.any(axis=1)
    plateau = ld.level >= 0.97
    # Overload: >= 0.9 x contracted capacity for two to six intervals, from a busy plateau.
    for n in range(counts.get("overload", 0)):
        k = pick(np.flatnonzero(active & (peak_fraction >= 0.6) & plateau.sum(axis=1).astype(bool)))
        if k is None:
            break
        dur = int(rng.integers(2, 7))
        starts = _runs(plateau[k], dur + 1)
        if not len(starts):
            continue
        a = int(rng.choice(starts)) + 1
        load[k, a : a + dur] = capacity[k] * rng.uniform(0.92, 1.0, dur)
        touched[k, a : a + dur] = True
        truth.append(
            _anomaly(
                "overload",
                day,
                n,
                ids[k],
                ld.slot_starts,
                a,
                a + dur,
                load[k, a : a + dur].max(),
                0.9 * capacity[k],
                meters[k],
                "kW",
            )
        )
    # Surge: load at least doubles from one interval to the next, at night, staying below overload.
    night_level = ld.level <= 0.36
    for n in range(counts.get("surge", 0)):
        k = pick(np.flatnonzero(active & (shift != "continuous")))
        if k is None:
            break
        dur = int(rng.integers(1, 4))
        starts = _runs(night_level[k], dur + 2)
        if not len(starts):
            continue
        a = int(rng.choice(starts)) + 1
        factor = rng.uniform(2.4, 3.0)
        load[k, a : a + dur] = load[k, a - 1] * factor * rng.uniform(1.0, 1.05, dur)
        touched[k, a - 1 : a + dur] = True
        truth.append(
            _anomaly(
                "surge",
                day,
                n,
                ids[k],
                ld.slot_starts,
                a,
                a + dur,
                load[k, a : a + dur].max(),
                2 * load[k, a - 1],
                meters[k],
                "kW",
            )
        )
    # Abnormal fluctuation: a level far from the slot's usual value, without a 2x step or overload.
    steady = (ld.level >= 0.97) | (ld.level <= 0.36)
    for n in range(counts.get("abnormal_fluctuation", 0)):
        k = pick(np.flatnonzero(active))
        if k is None:
            break
        dur = int(rng.integers(2, 5))
        starts = _runs(steady[k], dur + 2)
        if not len(starts):
            continue
        a = int(rng.choice(starts)) + 1
        base = ld.expected[k, a : a + dur]
        if base.max() * 1.7 * 1.1 < 0.85 * capacity[k]:
            factor = rng.uniform(1.45, 1.7)
        else:
            factor = rng.uniform(0.35, 0.55)
        load[k, a : a + dur] = base * factor * reading_noise[k, a : a + dur]
        touched[k, a - 1 : a + dur + 1] = True
        peak = load[k, a : a + dur].max() if factor > 1 else load[k, a : a + dur].min()
        truth.append(
            _anomaly(
                "abnormal_fluctuation", day, n, ids[k], ld.slot_starts, a, a + dur, peak, 3.5, meters[k], "kW"
            )
        )
    # Production while a suspension order is in force: ramp up from standby over two hours.
    ramp = int(ctx.scenario.power["ramp_slots"])
    for n in range(counts.get("suspension_violation", 0)):
        k = pick(np.flatnonzero(ld.suspended_all_day))
        if k is None:
            break
        dur = int(rng.integers(12, 33))
        a = int(rng.integers(28, 41))
        b = min(SLOTS, a + dur)
        target = capacity[k] * peak_fraction[k] * rng.uniform(0.6, 0.9)
        standby = ld.expected[k, a]
        steps = np.minimum(np.arange(1, b - a + 1) / ramp, 1.0)
        load[k, a:b] = standby * (target / standby) ** steps * reading_noise[k, a:b]
        touched[k, a:b] = True
        truth.append(
            _anomaly(
                "suspension_violation",
                day,
                n,
                ids[k],
                ld.slot_starts,
                a,
                b,
                load[k, a:b].max(),
                standby,
                meters[k],
                "kW",
            )
        )
    return truth, touched


@generator("power_load_readings")
def power_load_readings(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("power_load_readings")
    metered = ctx.world.metered
    ld = load_day(ctx, day)
    rng = ctx.rng(feed.name, day, "noise")
    noise = ctx.scenario.power["noise"]
    load = ld.expected * (1 + rng.uniform(-noise, noise, size=ld.expected.shape))
    truth, touched = inject_load_anomalies(ctx, day, ld, load)
    n = len(metered)
    capacity = metered["capacity_kw"].to_numpy()
    nominal_v = np.where(capacity >= 800, 10_000.0, 380.0)
    voltage = nominal_v[:, None] * (1 + rng.uniform(-0.02, 0.02, size=load.shape))
    current = load * 1000 / (np.sqrt(3) * voltage * 0.9)
    reading_at = _tile(ld.slot_starts, n)
    lag = pd.to_timedelta(rng.integers(930, 1200, size=n * SLOTS), unit="s")
    last = end_of_day(day)
    updated_at = (reading_at + lag).where(reading_at + lag <= last, last)
    frame = pd.DataFrame(
        {
            "meter_id": np.repeat(metered["meter_id"].to_numpy(), SLOTS),
            "enterprise_id": np.repeat(metered["enterprise_id"].to_numpy(), SLOTS),
            "reading_at": reading_at,
            "load_kw": np.round(load.ravel(), 2),
            "current_a": np.round(current.ravel(), 1),
            "voltage_v": np.round(voltage.ravel(), 1),
            "updated_at": updated_at,
        }
    )
    return DayOutput(conform(feed, frame), truth, touched.ravel())


@generator("cable_temperature_readings")
def cable_temperature_readings(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed(cable_temperature_readings.__name__)
    cables = ctx.world.cables
    ld = load_day(ctx, day)
    rng = ctx.rng(feed.name, day, "temperature")
    share = ld.level[cables["meter_index"].to_numpy()]
    share = np.where(ld.suspended[cables["meter_index"].to_numpy()], 0.05, share)
    ambient = cables["ambient_c"].to_numpy()[:, None] + 3 * np.sin(
        (np.arange(SLOTS)[None, :] - 36) / SLOTS * 2 * np.pi
    )
    temp = (
        ambient + cables["rise_c"].to_numpy()[:, None] * share**2 + rng.uniform(-1.0, 1.0, size=share.shape)
    )
    temp = np.minimum(temp, ctx.scenario.cable["normal_max_c"])
    touched = np.zeros_like(temp, dtype=bool)
    truth = []
    lo, hi = ctx.scenario.cable["over_temperature_c"]
    count = scaled(ctx.scenario.anomalies_per_day["cable_over_temperature"], ctx.scale)
    picks = rng.choice(len(cables), size=min(count, len(cables)), replace=False)
    for n, k in enumerate(picks):
        dur = int(rng.integers(4, 9))
        a = int(rng.integers(36, SLOTS - dur - 1))
        hot = rng.uniform(lo, hi)
        shape = np.minimum(1.0, (np.arange(dur) + 1) / 2)
        temp[k, a : a + dur] = np.maximum(72.0, hot * (0.97 + 0.03 * shape))
        touched[k, a : a + dur] = True
        truth.append(
            _anomaly(
                "cable_over_temperature",
                day,
                n,
                cables["enterprise_id"].iat[k],
                ld.slot_starts,
                a,
                a + dur,
                temp[k, a : a + dur].max(),
                70.0,
                cables["cable_id"].iat[k],
                "°C",
            )
        )
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
    return DayOutput(conform(feed, frame), truth, touched.ravel())
