"""The power anomalies injected on top of the normal load.

Anomalies (``anomalies.parquet``; ``started_at`` the first interval's start, ``ended_at`` the last's):

- overload: 0.92-1.05 x contracted capacity for 2-6 intervals, sometimes one reading missing inside;
- suspension_violation: production during a suspension order, sometimes one reading missing inside;
- surge: at night, a step of 2.4-3.5x from the previous interval for 2-4 intervals, above anything the
  meter read within an hour of that time in the last 56 days;
- abnormal_fluctuation: 8-16 intervals at 1.7-2.2x or 0.2-0.45x of the meter's normal load, mid-shift or
  in a stable period, on a meter with a regular history and no suspension order;

each on a meter and day where its rule can judge it, and checked against the rule (power_checks.py).

The near misses the rules must let pass are in power_near_misses.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .load_profiles import HISTORY_DAYS, SLOTS, take
from .power_checks import WINDOW, MeterHistory, fluctuation_is_fair, surges
from .power_day import FEED, PowerDay, quiet_hours, quiet_slots, runs_of

SCHEDULE_FROM = dt.date(2024, 1, 1)  # surges are scheduled from this day on (see surge_schedule)
OVERLOAD_CEILING = 0.85  # share of capacity an injected surge or fluctuation stays below


# ---------------------------------------------------------------- surges: a schedule over the days
def surge_candidates(pday: PowerDay) -> tuple[np.ndarray, np.ndarray]:
    """Regular five- and six-day meters, and where a surge may start on each (a quiet night). Not the
    meters of enterprises with a monitored cable: their day may be taken by a cable's event."""
    cabled = np.zeros(len(pday.used), dtype=bool)
    cabled[pday.ctx.world.cables["meter_index"].to_numpy()] = True
    cands = np.flatnonzero(pday.role("regular") & pday.model.shifts & ~cabled)
    longest = int(pday.ctx.scenario.power["anomaly"]["surge_intervals"][1])
    quiet = quiet_hours(take(pday.cols, cands), pday.ctx.scenario.power)
    return cands, quiet_slots(quiet, before=1, after=longest - 1)


def surge_schedule(pday: PowerDay) -> list[tuple[int, int]]:
    """(meter, first slot) of the day's surges.

    A surge must reach above anything its meter read within an hour of that time in the last 56 days,
    so a meter's surges are kept at least two hours of the day apart within any 56 days. The days are
    scheduled one after the other from ``SCHEDULE_FROM`` (each day's picks drawn from its own seeded
    generator): the schedule of a day is the same whichever days are simulated."""
    cands, slots = surge_candidates(pday)
    if not len(cands):
        return []
    count = pday.count("anomalies_per_day", "surge")
    recent: dict[int, list[tuple[int, int]]] = {}
    first = SCHEDULE_FROM if pday.day >= SCHEDULE_FROM else pday.day
    picks: list[tuple[int, int]] = []
    for ordinal in range(first.toordinal(), pday.day.toordinal() + 1):
        day = dt.date.fromordinal(ordinal)
        rng = pday.ctx.rng(FEED, day, "surge-schedule")
        picks = []
        for c in dict.fromkeys(int(x) for x in rng.integers(0, len(cands), 40 * count)):
            if len(picks) == count:
                break
            k = int(cands[c])
            earlier = [h for o, h in recent.get(k, []) if ordinal - o <= HISTORY_DAYS]
            options = np.flatnonzero(slots[c])
            if earlier:
                hours = options // 4
                apart = np.ones(len(options), dtype=bool)
                for h in earlier:
                    distance = np.abs(hours - h)
                    apart &= np.minimum(distance, 24 - distance) > 2
                options = options[apart]
            if not len(options):
                continue
            a = int(rng.choice(options))
            recent.setdefault(k, []).append((ordinal, a // 4))
            picks.append((k, a))
    return picks


def inject_surges(pday: PowerDay) -> None:
    spec = pday.ctx.scenario.power["anomaly"]
    noise = pday.noise
    for k, a in surge_schedule(pday):
        rng = pday.rng("surge", k)
        length = int(rng.integers(spec["surge_intervals"][0], spec["surge_intervals"][1] + 1))
        before = pday.load[k, a - 1]
        high = pday.histories(np.array([k]))[k].around(a) * (1 + noise)
        lowest = max(spec["surge_step"][0], 1.05 * high / before / 0.97)
        highest = min(spec["surge_step"][1], OVERLOAD_CEILING * pday.capacity[k] / before / 1.05)
        if pday.used[k] or lowest > highest:
            continue
        values = before * rng.uniform(lowest, highest) * np.r_[1.0, rng.uniform(0.97, 1.05, length - 1)]
        pday.load[k, a : a + length] = values
        pday.claim(k, a - 1, a + length, margin=2)
        pday.anomaly("surge", k, a, a + length - 1, values.max(), 2 * before)


# ---------------------------------------------------------------- the other anomalies
def _fluctuation(pday: PowerDay, k: int, up: bool, history: MeterHistory) -> bool:
    """Put an abnormal fluctuation on meter ``k`` if one can be fair there: a stable stretch of its day,
    at a length and factor its rule flags with a margin (a long rise is not: its two-hour neighbours
    take part of it), reaching neither an overload nor a surge (rules that take precedence)."""
    spec = pday.ctx.scenario.power["anomaly"]
    rng = pday.rng("fluctuation", k, up)
    usual = pday.model.usual(pday.params, np.array([k]))[0]
    x = pday.expected[k]
    for _ in range(8):
        length = int(rng.integers(spec["fluctuation_intervals"][0], spec["fluctuation_intervals"][1] + 1))
        factor = rng.uniform(*spec["fluctuation_up" if up else "fluctuation_down"])
        starts = np.arange(2 * WINDOW + 2, SLOTS - 2 * WINDOW - 2 - length)
        stable = [a for a in starts if x[a : a + length].max() <= 1.15 * x[a : a + length].min()]
        if not stable:
            return False
        a = int(rng.choice(stable))
        shape = np.full(length, factor)
        if up:  # a rise over two readings: a 2x step held for two intervals is the surge rule's
            shape[0] = np.sqrt(factor)
        y = x.copy()
        y[a : a + length] *= shape
        if up and y.max() * (1 + pday.noise) >= OVERLOAD_CEILING * pday.capacity[k]:
            continue
        if surges(y * (1 + pday.noise), y * (1 - pday.noise), history).any():
            continue  # the way back from a dip may not look like a surge either
        if not fluctuation_is_fair(y, usual, history, up):
            continue
        pday.load[k, a : a + length] *= shape
        pday.claim(k, a, a + length, margin=WINDOW + 2)
        normal = float(x[a : a + length].mean())
        values = pday.load[k, a : a + length]
        peak, threshold = (values.max(), 1.5 * normal) if up else (values.min(), normal / 1.5)
        pday.anomaly("abnormal_fluctuation", k, a, a + length - 1, peak, threshold)
        return True
    return False


def inject_fluctuations(pday: PowerDay) -> None:
    """Half of them up (on meters with room below an overload), half down."""
    count = pday.count("anomalies_per_day", "abnormal_fluctuation")
    eligible = pday.role("regular") & pday.normal_day() & ~pday.unsettled
    pool = pday.pool(eligible, 8 * count, "fluctuation")
    histories = pday.histories(pool)
    lowest_up = pday.ctx.scenario.power["anomaly"]["fluctuation_up"][0]
    room = OVERLOAD_CEILING * pday.capacity[pool] / (pday.expected[pool].max(axis=1) * (1 + pday.noise))
    ups = count // 2 + int(pday.rng("fluctuation", "direction").integers(0, 2)) * (count % 2)
    placed = 0
    for up in (True, False):
        wanted = ups if up else count - placed  # ups that found no meter become downs
        done = 0
        for k in pool[room >= lowest_up] if up else pool:
            if done == wanted:
                break
            if not pday.used[k] and _fluctuation(pday, int(k), up, histories[int(k)]):
                done += 1
        placed += done


def inject_overloads(pday: PowerDay) -> None:
    spec = pday.ctx.scenario.power["anomaly"]
    count = pday.count("anomalies_per_day", "overload")
    placed = 0
    for k in pday.pool(pday.role("rough") & pday.normal_day(), 4 * count, "overload"):
        if placed == count:
            break
        rng = pday.rng("overload", int(k))
        length = int(rng.integers(spec["overload_intervals"][0], spec["overload_intervals"][1] + 1))
        x = pday.expected[k]
        starts = runs_of(x >= 0.95 * x.max(), length + 2)
        if not len(starts):
            continue
        a = int(rng.choice(starts)) + 1
        values = pday.capacity[k] * rng.uniform(*spec["overload_ratio"], length)
        pday.load[k, a : a + length] = values
        if length >= 3 and rng.random() < spec["missing_inside_share"]:
            pday.missing[k, a + int(rng.integers(1, length - 1))] = True
        pday.claim(k, a, a + length, margin=2)
        read = values[~pday.missing[k, a : a + length]]
        pday.anomaly("overload", k, a, a + length - 1, read.max(), 0.9 * pday.capacity[k])
        placed += 1


def inject_suspension_violations(pday: PowerDay) -> None:
    spec = pday.ctx.scenario.power["anomaly"]
    count = pday.count("anomalies_per_day", "suspension_violation")
    eligible = pday.suspended.all(axis=1) & ~pday.role("no_capacity")
    for k in pday.pool(eligible, count, "suspension"):
        rng = pday.rng("suspension", int(k))
        length = int(rng.integers(spec["suspension_intervals"][0], spec["suspension_intervals"][1] + 1))
        a = int(rng.integers(28, 41))
        b = min(SLOTS, a + length)
        capacity = pday.capacity[k]
        target = pday.model.peak_kw[k] * rng.uniform(*spec["suspension_level"])
        ramp = np.minimum(
            1.0, np.r_[rng.uniform(0.4, 0.75, int(rng.integers(1, 3))), np.ones(b - a)][: b - a]
        )
        values = np.maximum(0.13 * capacity, target * ramp * rng.uniform(0.97, 1.03, b - a))
        pday.load[k, a:b] = values
        if rng.random() < spec["missing_inside_share"]:
            pday.missing[k, a + int(rng.integers(1, b - a - 1))] = True
        pday.claim(k, a, b, margin=2)
        read = values[~pday.missing[k, a:b]]
        pday.anomaly("suspension_violation", k, a, b - 1, read.max(), 0.1 * capacity)


def inject_anomalies(pday: PowerDay) -> None:
    """Surges first (they follow their schedule), then the others on meters still free."""
    inject_surges(pday)
    inject_fluctuations(pday)
    inject_overloads(pday)
    inject_suspension_violations(pday)
