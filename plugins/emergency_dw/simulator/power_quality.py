"""Data problems of the power meters: not warnings, but what the rules must recognise as data
(``data_quality.parquet``, kinds ``meter_offline``, ``missing_readings``, ``meter_replaced``,
``no_contracted_capacity``):

- single readings not delivered, at a low rate;
- meters offline for 1-6 hours: readings of 0 kW, 0 V and 0 A, or no rows at all; the first reading
  after the outage may catch up (carry some of the energy the meter missed);
- one meter replaced in the middle of each month: the enterprise's readings come from a new meter from
  that day on, after a gap while it is swapped (the new meter has no history);
- a few enterprises the emergency bureau has no safety profile for, so no contracted capacity (they are
  left out of enterprise_safety_profiles: its contract requires a capacity on every profile).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .common import rng_for
from .load_profiles import HISTORY_DAYS, SLOTS
from .power_day import FEED, PowerDay
from .power_events import SCHEDULE_FROM

if TYPE_CHECKING:
    from .generators.base import SimContext

MAX_READING_KW = 54_000.0  # a catch-up reading stays within the feed's declared range (60,000 kW)
NEW_METER_SERIAL = 50_000_000  # replacement meters are numbered from M50000000, one a month


@dataclass(frozen=True)
class Replacement:
    meter: int  # index of the enterprise in World.metered
    day: dt.date
    slot: int  # the old meter's last reading is the one before this slot
    gap: int  # intervals without a reading while the meter is swapped
    old_id: str
    new_id: str


def replacements(ctx: SimContext, until: dt.date) -> list[Replacement]:
    """The monthly meter replacements from ``SCHEDULE_FROM`` to ``until`` (each month's drawn from its
    own seeded generator, so a day's meters are the same whichever days are simulated)."""
    spec = ctx.scenario.power["data_quality"]
    profiles = ctx.world.operating_profiles
    eligible = np.flatnonzero(
        (profiles["role"].to_numpy() == "rough") & ~profiles["has_suspension_history"].to_numpy()
    )
    ids = ctx.world.metered["meter_id"].to_numpy().copy()
    out: list[Replacement] = []
    if not len(eligible):
        return out
    year, month = SCHEDULE_FROM.year, SCHEDULE_FROM.month
    while (year, month) <= (until.year, until.month):
        rng = rng_for(ctx.seed, FEED, "meter-replacement", f"{year}-{month:02d}")
        day = dt.date(
            year, month, int(rng.integers(spec["replacement_day"][0], spec["replacement_day"][1] + 1))
        )
        k = int(rng.choice(eligible))
        slot = int(rng.integers(36, 65))
        gap = int(
            rng.integers(spec["replacement_gap_intervals"][0], spec["replacement_gap_intervals"][1] + 1)
        )
        serial = (year - SCHEDULE_FROM.year) * 12 + month - 1
        new_id = f"M{NEW_METER_SERIAL + serial:08d}"
        if day <= until:
            out.append(Replacement(k, day, slot, gap, str(ids[k]), new_id))
            ids[k] = new_id
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def meters_on(ctx: SimContext, day: dt.date) -> tuple[np.ndarray, Replacement | None, np.ndarray]:
    """Each enterprise's meter on ``day`` (the new one on the day of its replacement), the replacement
    of ``day`` if any, and which enterprises had their meter replaced in the last 56 days."""
    ids = ctx.world.metered["meter_id"].to_numpy().copy()
    recent = np.zeros(len(ids), dtype=bool)
    today = None
    for r in replacements(ctx, day):
        ids[r.meter] = r.new_id
        recent[r.meter] |= (day - r.day).days <= HISTORY_DAYS
        if r.day == day:
            today = r
    return ids, today, recent


def record_replacement(pday: PowerDay, r: Replacement) -> None:
    end = min(SLOTS, r.slot + r.gap)
    pday.missing[r.meter, r.slot : end] = True
    pday.claim(r.meter, 0, SLOTS, margin=0)
    detail = (
        f"meter {r.old_id} replaced by {r.new_id}: the old meter's last reading starts at "
        f"{pday.clock(r.slot - 1)}, no reading until {pday.clock(end) if end < SLOTS else 'midnight'}; "
        "the new meter has no history"
    )
    pday.record(pday.data_quality, "meter_replaced", r.meter, r.slot, min(end, SLOTS - 1), detail)


def record_no_capacity(pday: PowerDay) -> None:
    for k in np.flatnonzero(pday.role("no_capacity")):
        pday.claim(int(k), 0, SLOTS, margin=0)
        detail = (
            f"the emergency bureau has no safety profile of {pday.enterprise_ids[k]}: "
            "its contracted capacity is unknown"
        )
        pday.record(pday.data_quality, "no_contracted_capacity", int(k), 0, SLOTS - 1, detail)


def inject_outages(pday: PowerDay) -> None:
    """Meters offline for a few hours; the first reading after may carry missed energy."""
    spec = pday.ctx.scenario.power["data_quality"]
    count = pday.count("data_quality", "offline_per_day")
    for k in pday.pool(pday.role("flaky"), count, "offline"):
        k = int(k)
        rng = pday.rng("offline", k)
        length = int(round(rng.uniform(*spec["offline_hours"]) * 4))
        a = int(rng.integers(0, SLOTS - length))
        b = a + length  # the first reading after the outage
        rows_missing = bool(rng.random() < spec["offline_rows_missing_share"])
        (pday.missing if rows_missing else pday.offline)[k, a:b] = True
        how = "no rows delivered" if rows_missing else "readings of 0 kW, 0 V and 0 A"
        detail = f"meter offline for {length / 4:g} h: {how}"
        if rng.random() < spec["catch_up_share"]:
            share = rng.uniform(*spec["catch_up_energy"])
            missed = float(pday.load[k, a:b].sum())  # kW x 15 min each: in kW of one interval
            pday.load[k, b] = min(MAX_READING_KW, pday.load[k, b] + share * missed)
            detail += f"; the reading at {pday.clock(b)} catches up {share:.0%} of the missed energy"
        pday.claim(k, a, b + 1, margin=1)
        pday.record(pday.data_quality, "meter_offline", k, a, b - 1, detail)


def inject_missing_readings(pday: PowerDay) -> None:
    """Single readings not delivered, on meters that carry nothing else today."""
    rate = float(pday.ctx.scenario.power["data_quality"]["missing_reading_rate"])
    free = np.flatnonzero(~pday.used)
    rng = pday.rng("missing-readings")
    cells = rng.choice(len(free) * SLOTS, size=int(rng.binomial(len(free) * SLOTS, rate)), replace=False)
    cells.sort()
    meters, slots = free[cells // SLOTS], cells % SLOTS
    pday.missing[meters, slots] = True
    start = 0
    for j in range(1, len(cells) + 1):  # one record per run of consecutive missing readings
        if j < len(cells) and meters[j] == meters[j - 1] and slots[j] == slots[j - 1] + 1:
            continue
        k, a, b = int(meters[start]), int(slots[start]), int(slots[j - 1])
        detail = "reading not delivered" if a == b else f"{b - a + 1} readings not delivered"
        pday.record(pday.data_quality, "missing_readings", k, a, b, detail)
        start = j
