"""Near misses: what real meters do that looks like an anomaly and is not one (``near_misses.parquet``).

- ``near_capacity``: 0.80-0.87 x contracted capacity for about an hour, on a meter that runs near that
  anyway (its best hour of the last 56 days is within 1.1x of it);
- ``one_interval_spike``: 2-3x for a single 15 minutes, at night;
- ``shifted_start``: a shift starting 15-30 minutes earlier or later than usual: an ordinary shift step;
- ``slow_restart``: on a Monday or after a holiday, the shift comes up over 45-75 minutes;
- ``small_change``: a two-hour change of only 1.15-1.3x.

Each is checked against the rules before it is put in (power_checks.stays_clear): none may warn.
"""

from __future__ import annotations

import numpy as np

from .load_profiles import SLOTS
from .power_checks import WINDOW, stays_clear
from .power_day import PowerDay, quiet_hours, quiet_slots, runs_of

SECTION = "near_misses_per_day"


def _spec(pday: PowerDay) -> dict:
    return pday.ctx.scenario.power["near_miss"]


def _noise(pday: PowerDay, exact: slice | None = None) -> np.ndarray:
    noise = np.full(SLOTS, pday.noise)
    if exact is not None:
        noise[exact] = 0.0
    return noise


def _place(pday: PowerDay, kind: str, eligible: np.ndarray, try_one) -> None:
    """Put up to the day's count of ``kind`` on eligible meters: ``try_one(k, rng, history)`` returns
    True when it put one on meter ``k``."""
    count = pday.count(SECTION, kind)
    pool = pday.pool(eligible, 5 * count, kind)
    histories = pday.histories(pool)
    placed = 0
    for k in pool:
        if placed == count:
            break
        placed += bool(try_one(int(k), pday.rng(kind, int(k)), histories[int(k)]))


def near_capacity(pday: PowerDay) -> None:
    lo, hi = _spec(pday)["near_capacity_ratio"]
    length_lo, length_hi = _spec(pday)["near_capacity_intervals"]
    capacity = pday.capacity

    def try_one(k: int, rng: np.random.Generator, history) -> bool:
        top = min(hi, 1.1 * history.best_hour / capacity[k])
        if top < lo + 0.01:
            return False
        length = int(rng.integers(length_lo, length_hi + 1))
        x = pday.expected[k]
        starts = runs_of(x >= 0.95 * x.max(), length + 2)
        if not len(starts):
            return False
        a = int(rng.choice(starts)) + 1
        values = capacity[k] * rng.uniform(lo, top, length)
        y = x.copy()
        y[a : a + length] = values
        usual = pday.model.usual(pday.params, np.array([k]))[0]
        if not stays_clear(y, usual, history, capacity[k], _noise(pday, slice(a, a + length))):
            return False
        pday.load[k, a : a + length] = values
        pday.claim(k, a, a + length, margin=2)
        share = values.max() / capacity[k]
        pday.record(pday.near_misses, "near_capacity", k, a, a + length - 1, f"up to {share:.2f} x capacity")
        return True

    plausible = pday.model.peak_kw * 1.1 >= 0.72 * capacity
    _place(pday, "near_capacity", pday.role("regular", "rough") & pday.normal_day() & plausible, try_one)


def one_interval_spikes(pday: PowerDay) -> None:
    lo, hi = _spec(pday)["spike_ratio"]
    quiet = quiet_slots(quiet_hours(pday.cols, pday.ctx.scenario.power), before=4, after=4)

    def try_one(k: int, rng: np.random.Generator, history) -> bool:
        slots = np.flatnonzero(quiet[k])
        if not len(slots):
            return False
        a = int(rng.choice(slots))
        factor = rng.uniform(lo, hi)
        y = pday.expected[k].copy()
        y[a] = pday.load[k, a] * factor
        usual = pday.model.usual(pday.params, np.array([k]))[0]
        if not stays_clear(y, usual, history, pday.capacity[k], _noise(pday, slice(a, a + 1))):
            return False
        pday.load[k, a] *= factor
        pday.claim(k, a, a + 1, margin=4)
        pday.record(pday.near_misses, "one_interval_spike", k, a, a, f"{factor:.2f}x for one interval")
        return True

    eligible = pday.role("rough") & quiet.any(axis=1) & ~pday.suspended.any(axis=1) & ~pday.recently_replaced
    _place(pday, "one_interval_spike", eligible & ~pday.suspension_recent, try_one)


def shifted_starts(pday: PowerDay) -> None:
    lo, hi = _spec(pday)["shifted_start_minutes"]
    usual_start = pday.cols["start"]

    def try_one(k: int, rng: np.random.Generator, history) -> bool:
        offset = rng.uniform(lo, hi) * rng.choice([-1.0, 1.0])
        start = usual_start[k] + offset
        y = pday.model.one(pday.params, k, start=start)
        usual = pday.model.usual(pday.params, np.array([k]))[0]
        if not stays_clear(y, usual, history, pday.capacity[k], pday.noise):
            return False
        pday.expected[k] = y
        pday.load[k] = y * pday.noise_factors[k]
        a = int(min(start, usual_start[k]) // 15)
        b = int(max(start, usual_start[k]) // 15) + 1
        pday.claim(k, a, b, margin=2)
        when = "earlier" if offset < 0 else "later"
        detail = f"the shift started at {_clock(start)}, {abs(offset):.0f} minutes {when} than usual"
        pday.record(pday.near_misses, "shifted_start", k, a, b - 1, detail)
        return True

    eligible = pday.model.shifts & pday.normal_day() & ~pday.params.first_worked & ~pday.params.irregular
    _place(pday, "shifted_start", pday.role("regular", "rough") & eligible, try_one)


def slow_restarts(pday: PowerDay) -> None:
    lo, hi = _spec(pday)["slow_restart_minutes"]
    starts = pday.params.times.start

    def try_one(k: int, rng: np.random.Generator, history) -> bool:
        ramp = rng.uniform(lo, hi)
        y = pday.model.one(pday.params, k, start_ramp=ramp)
        usual = pday.model.usual(pday.params, np.array([k]))[0]
        if not stays_clear(y, usual, history, pday.capacity[k], pday.noise):
            return False
        pday.expected[k] = y
        pday.load[k] = y * pday.noise_factors[k]
        a, b = int(starts[k] // 15), int((starts[k] + ramp) // 15) + 1
        pday.claim(k, a, b, margin=2)
        detail = f"the shift came up over {ramp:.0f} minutes from {_clock(starts[k])}"
        pday.record(pday.near_misses, "slow_restart", k, a, b - 1, detail)
        return True

    eligible = pday.model.shifts & pday.normal_day() & pday.params.first_worked & ~pday.params.irregular
    _place(pday, "slow_restart", pday.role("regular", "rough") & eligible, try_one)


def small_changes(pday: PowerDay) -> None:
    lo, hi = _spec(pday)["small_change_ratio"]
    quiet = quiet_slots(quiet_hours(pday.cols, pday.ctx.scenario.power), before=2, after=WINDOW + 1)
    rough = pday.role("rough")

    def try_one(k: int, rng: np.random.Generator, history) -> bool:
        x = pday.expected[k]
        ratio = rng.uniform(lo, hi)
        stable = np.arange(2 * WINDOW, SLOTS - 3 * WINDOW)
        stable = stable[[x[a : a + WINDOW].max() <= 1.1 * x[a : a + WINDOW].min() for a in stable]]
        # up at night only on a meter that takes no surge (a raised night is a higher look-back); by
        # day up when that stays clear of a new peak, else down
        tries = [(ratio, stable), (1 / ratio, stable)]
        if rough[k] and quiet[k].any():
            tries.insert(0, (ratio, np.flatnonzero(quiet[k])))
        usual = pday.model.usual(pday.params, np.array([k]))[0]
        for factor, starts in tries:
            if not len(starts):
                continue
            a = int(rng.choice(starts))
            y = x.copy()
            y[a : a + WINDOW] *= factor
            if stays_clear(y, usual, history, pday.capacity[k], pday.noise):
                pday.load[k, a : a + WINDOW] *= factor
                pday.claim(k, a, a + WINDOW, margin=2)
                detail = f"{factor:.2f}x for two hours"
                pday.record(pday.near_misses, "small_change", k, a, a + WINDOW - 1, detail)
                return True
        return False

    _place(pday, "small_change", pday.role("regular", "rough") & pday.normal_day(), try_one)


def _clock(minute: float) -> str:
    minute = int(round(minute))
    return f"{minute // 60:02d}:{minute % 60:02d}"


def inject_near_misses(pday: PowerDay) -> None:
    """The day's near misses, on meters that carry nothing else today."""
    near_capacity(pday)
    one_interval_spikes(pday)
    slow_restarts(pday)
    shifted_starts(pday)
    small_changes(pday)
