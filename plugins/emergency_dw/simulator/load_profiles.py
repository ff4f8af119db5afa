"""How much electricity a metered enterprise normally draws, every 15 minutes of any day (noise-free).

Three operating profiles, mapped from the world's shift mix:

- ``five_day`` (day shift): one shift of about 08:00-17:30 with a lunch dip, Monday to Friday; Saturdays,
  Sundays and holidays at 22-45 % of a working day's mean load;
- ``six_day`` (two shifts): 06:00-22:00, the second shift a little lower, Monday to Saturday; Sundays and
  holidays low;
- ``continuous`` (a process): flat with a small daily wave, every day.

A shift starts and stops with a sharp step (a few minutes: up to 10x within one 15-minute reading), at a
time that moves by up to 15-30 minutes from day to day. On top: a day factor (+-10 %, a smooth function
of the date, like the weather), China's holiday calendar with its adjusted working days, and the Spring
Festival, when most five- and six-day plants close longer and some restart gradually.

Everything here is a function of (seed, enterprise, date): a day is computed alone, nothing is carried
from one day to the next. The load of a whole county's meters for a day is a handful of numpy arrays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .calendar import HolidayCalendar
from .common import rng_for
from .scenario import Scenario

SLOTS = 96
SLOT_MINUTES = 15
SLOT_EDGES = np.arange(SLOTS + 1, dtype=float) * SLOT_MINUTES  # minutes after local midnight
HISTORY_DAYS = 56  # the rules' look-back: the simulator keeps its anomalies fair over this many days
PATTERN_OF_SHIFT = {"day_shift": "five_day", "two_shift": "six_day", "continuous": "continuous"}
REST_KINDS = {"five_day": ("saturday", "sunday", "holiday"), "six_day": ("sunday", "holiday")}
LUNCH_RAMP_MINUTES = 5.0
SECOND_SHIFT_RAMP_MINUTES = 10.0

Columns = dict[str, np.ndarray]  # a profile table as plain arrays: indexing them is cheap


def columns(frame: pd.DataFrame) -> Columns:
    return {name: frame[name].to_numpy() for name in frame.columns}


def take(cols: Columns, idx) -> Columns:
    return {name: values[idx] for name, values in cols.items()}


def minutes(clock: str) -> float:
    """Minutes after midnight of a ``"HH:MM"`` time of the scenario."""
    hours, mins = clock.split(":")
    return int(hours) * 60.0 + int(mins)


def ramp_means(onset: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """Mean over every 15-minute slot of ``clip((t - onset) / ramp, 0, 1)``: a switch-on that takes
    ``ramp`` minutes from ``onset``. Exact (the integral of a piecewise-linear function); (k, 96)."""
    onset = np.asarray(onset, dtype=float)[:, None]
    ramp = np.maximum(np.asarray(ramp, dtype=float), 1e-6)[:, None]
    x = SLOT_EDGES[None, :] - onset
    integral = np.where(x <= 0, 0.0, np.where(x < ramp, x * x / (2 * ramp), x - ramp / 2))
    return np.diff(integral, axis=1) / SLOT_MINUTES


TIMES_FIELDS = ("start", "stop", "start_ramp", "stop_ramp")


@dataclass(frozen=True)
class ShiftTimes:
    """One day's shift of some enterprises, in minutes after local midnight."""

    start: np.ndarray
    stop: np.ndarray
    start_ramp: np.ndarray
    stop_ramp: np.ndarray


def shift_shares(cols: Columns, times: ShiftTimes) -> np.ndarray:
    """Share of the shift's full load in every slot (0 outside the shift), for five- and six-day
    plants; (k, 96). ``cols``: these enterprises' profiles (``World.operating_profiles``)."""
    on = ramp_means(times.start, times.start_ramp)
    off = ramp_means(times.stop - times.stop_ramp, times.stop_ramp)
    shares = on - off
    k = len(times.start)
    lunch_dip = cols["lunch_dip"][:, None]
    if lunch_dip.any():
        lunch = ramp_means(cols["lunch_start"], np.full(k, LUNCH_RAMP_MINUTES))
        back = ramp_means(cols["lunch_end"] - LUNCH_RAMP_MINUTES, np.full(k, LUNCH_RAMP_MINUTES))
        shares = shares - lunch_dip * (lunch - back)
    second = cols["second_shift_level"][:, None]
    if (second < 1).any():
        handover = ramp_means(cols["second_shift_at"], np.full(k, SECOND_SHIFT_RAMP_MINUTES))
        # from the handover to the stop the shift draws second_shift_level of the first shift's load
        shares = shares - (1 - second) * np.clip(handover - off, 0, None)
    return np.clip(shares, 0.0, 1.0)


def continuous_shares(cols: Columns) -> np.ndarray:
    """A continuous process: 1 at the day's peak, ``1 - daily_wave`` twelve hours later; (k, 96)."""
    middle = (SLOT_EDGES[:-1] + SLOT_MINUTES / 2)[None, :]
    phase = (middle - cols["wave_peak"][:, None]) / 1440.0 * 2 * np.pi
    return 1 - cols["daily_wave"][:, None] * 0.5 * (1 - np.cos(phase))


def draw_operating_profiles(
    rng: np.random.Generator, metered: pd.DataFrame, scenario: Scenario
) -> pd.DataFrame:
    """Every metered enterprise's operating profile (static: the world's, never the date's)."""
    power = scenario.power
    n = len(metered)
    pattern = metered["shift"].map(PATTERN_OF_SHIFT).to_numpy()
    five, six, cont = (pattern == p for p in ("five_day", "six_day", "continuous"))

    def between(bounds, size=n, clock=False) -> np.ndarray:
        lo, hi = (minutes(b) for b in bounds) if clock else bounds
        return rng.uniform(lo, hi, size)

    f, s, c = power["five_day"], power["six_day"], power["continuous"]
    frame = pd.DataFrame(
        {
            "enterprise_id": metered["enterprise_id"].to_numpy(),
            "pattern": pattern,
            "start": np.where(five, between(f["start"], clock=True), between(s["start"], clock=True)),
            "stop": np.where(five, between(f["stop"], clock=True), between(s["stop"], clock=True)),
            "start_ramp": between(power["ramp_minutes"]),
            "stop_ramp": between(power["ramp_minutes"]),
            "jitter": between(power["jitter_minutes"]),
            "lunch_start": np.full(n, minutes(f["lunch"][0])),
            "lunch_end": np.full(n, minutes(f["lunch"][1])),
            "lunch_dip": np.where(five, between(f["lunch_dip"]), 0.0),
            "second_shift_at": np.full(n, minutes(s["second_shift"])),
            "second_shift_level": np.where(six, between(s["second_shift_level"]), 1.0),
            "rest_day_ratio": np.where(five, between(f["rest_day_ratio"]), between(s["rest_day_ratio"])),
            "daily_wave": np.where(cont, between(c["daily_wave"]), 0.0),
            "wave_peak": between(c["wave_peak"], clock=True),
            "festival_reduce": cont & (rng.random(n) < c["festival_reduce_share"]),
            "festival_level": between(c["festival_level"]),
            "standby": between(power["standby_fraction"]),
            "fast_period": between(power["day_variation_periods"][0]),
            "fast_phase": rng.uniform(0, 2 * np.pi, n),
            "slow_period": between(power["day_variation_periods"][1]),
            "slow_phase": rng.uniform(0, 2 * np.pi, n),
        }
    )
    # The night (base) load and the rest days' activity follow from the rest-day ratio: a rest day
    # draws the base load and a share of the shift, so that its mean is that ratio of a working day's.
    usual = shift_shares(columns(frame), _usual_times(columns(frame))).mean(axis=1)
    ratio = frame["rest_day_ratio"].to_numpy()
    night_lo = np.where(five, f["night_fraction"][0], s["night_fraction"][0])
    night_hi = np.where(five, f["night_fraction"][1], s["night_fraction"][1])
    # base <= ratio x working-day mean: base <= ratio x usual / (1 - ratio x (1 - usual))
    feasible = ratio * usual / (1 - ratio * (1 - usual))
    night = rng.uniform(night_lo, np.maximum(night_lo, np.minimum(night_hi, feasible)))
    working_mean = night + (1 - night) * usual
    activity = np.clip((ratio * working_mean - night) / ((1 - night) * usual), 0.0, 1.0)
    frame["night"] = np.where(cont, 1.0, night)
    frame["rest_activity"] = np.where(cont, 1.0, activity)
    return frame


def _usual_times(cols: Columns) -> ShiftTimes:
    return ShiftTimes(cols["start"], cols["stop"], cols["start_ramp"], cols["stop_ramp"])


@dataclass(frozen=True)
class FestivalPlan:
    """Each enterprise's Spring Festival of one year: closed from ``closed_from`` to ``closed_to``
    (ordinals; none when ``closed_from > closed_to``), then back at ``restart_level`` of its shift's
    load, rising to all of it over ``restart_days``; ``irregular_to``: the last day of all that."""

    closed_from: np.ndarray
    closed_to: np.ndarray
    restart_level: np.ndarray
    restart_days: np.ndarray
    irregular_from: np.ndarray
    irregular_to: np.ndarray


def festival_plan(
    seed: int, cols: Columns, scenario: Scenario, year: int, calendar: HolidayCalendar
) -> FestivalPlan:
    """The Spring Festival of ``year`` for every enterprise; nothing when the calendar lacks it."""
    n = len(cols["pattern"])
    never = np.zeros(n, dtype=np.int64)
    span = calendar.spring_festival(year)
    if span is None:
        return FestivalPlan(never + 1, never, np.ones(n), never, never + 1, never)
    first, last = span[0].toordinal(), span[1].toordinal()
    sf = scenario.power["spring_festival"]
    rng = rng_for(seed, "power-profiles", "spring-festival", year)
    shifts = cols["pattern"] != "continuous"
    extended = shifts & (rng.random(n) < sf["extended_share"])
    early = extended & (rng.random(n) < sf["early_close_share"])
    early_days = rng.integers(sf["early_close_days"][0], sf["early_close_days"][1] + 1, n)
    late_days = rng.integers(sf["late_return_days"][0], sf["late_return_days"][1] + 1, n)
    restart = shifts & (rng.random(n) < sf["restart_share"])
    restart_level = np.where(restart, rng.uniform(*sf["restart_level"], n), 1.0)
    restart_days = np.where(restart, rng.integers(sf["restart_days"][0], sf["restart_days"][1] + 1, n), 0)
    closed_from = np.where(early, first - early_days, first)
    closed_to = np.where(extended, last + late_days, last)
    reduced = cols["festival_reduce"]
    return FestivalPlan(
        closed_from=np.where(shifts, closed_from, first + 1),
        closed_to=np.where(shifts, closed_to, first),
        restart_level=restart_level,
        restart_days=restart_days,
        irregular_from=np.where(shifts, closed_from, np.where(reduced, first, first + 1)),
        irregular_to=np.where(shifts, closed_to + restart_days, np.where(reduced, last, first)),
    )


@dataclass(frozen=True)
class DayParams:
    """What shapes every metered enterprise's load on one day (arrays aligned with ``World.metered``)."""

    day: dt.date
    kind: str  # the calendar's kind of the date
    times: ShiftTimes
    activity: np.ndarray  # share of the shift's load drawn: 1 on a working day
    level: np.ndarray  # factor on the whole profile (a continuous plant turned down for the festival)
    day_factor: np.ndarray
    rest: np.ndarray  # a rest day of the plant (weekend, holiday, festival shutdown)
    first_worked: np.ndarray  # a working day after a rest day (Mondays, after holidays)
    irregular: np.ndarray  # in a festival shutdown, restart or turn-down

    def subset(self, idx: np.ndarray) -> DayParams:
        t = self.times
        return DayParams(
            self.day,
            self.kind,
            ShiftTimes(t.start[idx], t.stop[idx], t.start_ramp[idx], t.stop_ramp[idx]),
            self.activity[idx],
            self.level[idx],
            self.day_factor[idx],
            self.rest[idx],
            self.first_worked[idx],
            self.irregular[idx],
        )

    def with_times(self, times: ShiftTimes) -> DayParams:
        return replace(self, times=times)


def day_factor(seed: int, cols: Columns, scenario: Scenario, days: np.ndarray) -> np.ndarray:
    """The day factor of every enterprise on each of ``days`` (ordinals): 1 +- ``day_variation``, a sum
    of two slow waves, half of it shared by the whole county; (enterprises, days)."""
    power = scenario.power
    rng = rng_for(seed, "power-profiles", "weather")
    fast = rng.uniform(*power["day_variation_periods"][0])
    slow = rng.uniform(*power["day_variation_periods"][1])
    phases = rng.uniform(0, 2 * np.pi, 2)
    t = np.asarray(days, dtype=float)[None, :]
    common = 0.6 * np.sin(2 * np.pi * t / fast + phases[0]) + 0.4 * np.sin(2 * np.pi * t / slow + phases[1])
    own = 0.6 * np.sin(2 * np.pi * t / cols["fast_period"][:, None] + cols["fast_phase"][:, None])
    own += 0.4 * np.sin(2 * np.pi * t / cols["slow_period"][:, None] + cols["slow_phase"][:, None])
    shared = power["day_variation_common"]
    return 1 + power["day_variation"] * (shared * common + (1 - shared) * own)


def profile_shares(cols: Columns, params: DayParams) -> np.ndarray:
    """Share of the normal peak (before the day factor) in every slot; rows of ``cols`` and ``params``
    aligned; (k, 96)."""
    night = cols["night"]
    cont = cols["pattern"] == "continuous"
    shares = np.empty((len(night), SLOTS))
    rows = ~cont
    if rows.any():
        t = params.times
        times = ShiftTimes(t.start[rows], t.stop[rows], t.start_ramp[rows], t.stop_ramp[rows])
        shift = shift_shares(take(cols, rows), times)
        shares[rows] = night[rows, None] + (1 - night[rows, None]) * params.activity[rows, None] * shift
    if cont.any():
        shares[cont] = continuous_shares(take(cols, cont))
    return shares * params.level[:, None]


@dataclass
class LoadModel:
    """The normal load of the metered enterprises (``profiles`` and ``metered`` aligned row by row)."""

    seed: int
    scenario: Scenario
    profiles: pd.DataFrame
    metered: pd.DataFrame
    calendar: HolidayCalendar

    def __post_init__(self) -> None:
        self.cols = columns(self.profiles)
        self.peak_kw = self.metered["capacity_kw"].to_numpy() * self.metered["peak_fraction"].to_numpy()
        self.shifts = self.cols["pattern"] != "continuous"
        self._festivals: dict[int, FestivalPlan] = {}
        self._days: dict[dt.date, DayParams] = {}  # the look-back's days, computed once

    def festival(self, year: int) -> FestivalPlan:
        if year not in self._festivals:
            self._festivals[year] = festival_plan(self.seed, self.cols, self.scenario, year, self.calendar)
        return self._festivals[year]

    def _rest(self, day: dt.date) -> np.ndarray:
        """Five- and six-day plants resting on ``day``: their weekend, a holiday, a festival shutdown."""
        kind = self.calendar.kind(day)
        rest = np.zeros(len(self.shifts), dtype=bool)
        for pattern, kinds in REST_KINDS.items():
            if kind in kinds:
                rest |= self.cols["pattern"] == pattern
        plan = self.festival(day.year)
        ordinal = day.toordinal()
        return rest | ((plan.closed_from <= ordinal) & (ordinal <= plan.closed_to))

    def day_params(self, day: dt.date) -> DayParams:
        """Every enterprise's shift times, activity and day factor on ``day``."""
        cols = self.cols
        ordinal = day.toordinal()
        plan = self.festival(day.year)
        kind = self.calendar.kind(day)
        rest = self._rest(day)
        since_back = ordinal - plan.closed_to - 1
        restarting = self.shifts & (since_back >= 0) & (since_back < plan.restart_days)
        climb = plan.restart_level + (1 - plan.restart_level) * since_back / np.maximum(plan.restart_days, 1)
        activity = np.where(rest, cols["rest_activity"], np.where(restarting, climb, 1.0))
        irregular = (plan.irregular_from <= ordinal) & (ordinal <= plan.irregular_to)
        reduced = cols["festival_reduce"] & (kind == "holiday") & irregular
        jitter = rng_for(self.seed, "power-profiles", day.isoformat(), "jitter").uniform(
            -1, 1, (2, len(rest))
        )
        times = ShiftTimes(
            cols["start"] + cols["jitter"] * jitter[0],
            cols["stop"] + cols["jitter"] * jitter[1],
            cols["start_ramp"].copy(),
            cols["stop_ramp"].copy(),
        )
        return DayParams(
            day=day,
            kind=kind,
            times=times,
            activity=activity,
            level=np.where(reduced, cols["festival_level"], 1.0),
            day_factor=day_factor(self.seed, cols, self.scenario, np.array([ordinal]))[:, 0],
            rest=rest & self.shifts,
            first_worked=self.shifts & ~rest & self._rest(day - dt.timedelta(days=1)),
            irregular=irregular,
        )

    def _load(self, params: DayParams, idx) -> np.ndarray:
        return (
            self.peak_kw[idx, None]
            * params.day_factor[:, None]
            * profile_shares(take(self.cols, idx), params)
        )

    def expected(self, params: DayParams, idx: np.ndarray | None = None) -> np.ndarray:
        """Noise-free load in kW; of the enterprises ``idx`` (all when None); (k, 96)."""
        if idx is None:
            return self.peak_kw[:, None] * params.day_factor[:, None] * profile_shares(self.cols, params)
        return self._load(params.subset(idx), idx)

    def usual(self, params: DayParams, idx: np.ndarray) -> np.ndarray:
        """The load ``idx`` would draw that day at their usual shift times (no jitter); (k, 96)."""
        return self._load(params.subset(idx).with_times(_usual_times(take(self.cols, idx))), idx)

    def one(self, params: DayParams, k: int, **times: float) -> np.ndarray:
        """The load meter ``k`` would draw that day with some of its shift times changed (``start``,
        ``stop``, ``start_ramp``, ``stop_ramp``); (96,)."""
        idx = np.array([k])
        sub = params.subset(idx)
        changed = {f: np.array([times[f]]) if f in times else getattr(sub.times, f) for f in TIMES_FIELDS}
        return self._load(sub.with_times(ShiftTimes(**changed)), idx)[0]

    def unsettled(self, day: dt.date, days: int = HISTORY_DAYS) -> np.ndarray:
        """Enterprises whose last ``days`` days (and ``day``) had a Spring Festival shutdown, restart or
        turn-down: their history is not a regular one."""
        start = day.toordinal() - days
        out = np.zeros(len(self.shifts), dtype=bool)
        for year in {day.year, day.year - 1}:
            plan = self.festival(year)
            span = plan.irregular_from <= plan.irregular_to
            out |= span & (plan.irregular_from <= day.toordinal()) & (plan.irregular_to >= start)
        return out

    def history(self, day: dt.date, idx: np.ndarray, days: int = HISTORY_DAYS) -> np.ndarray:
        """Noise-free load of ``idx`` on each of the ``days`` days before ``day``; (k, days, 96)."""
        out = np.empty((len(idx), days, SLOTS))
        for back in range(days):
            past = day - dt.timedelta(days=days - back)
            if past not in self._days:
                self._days[past] = self.day_params(past)
            out[:, back] = self.expected(self._days[past], idx)
        return out
