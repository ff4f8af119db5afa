"""Real 15-minute load curves spliced into a simulated city (``edw evaluate --real-curves``).

The simulator's load is what its authors imagined; a real meter's is not. This module reads real load
curves from a CSV file (``read_load_curves``), cuts windows of a few weeks out of them, scales each to a
simulated metered enterprise's capacity, and delivers them as that enterprise's ``power_load_readings``
(``RealCurveSimulator``), with events of declared shapes put on top in the judged weeks and written as the
ground truth. Everything else the city delivers (other meters, cables, safety profiles, suspension
orders) stays as simulated.

The spliced enterprises are chosen so that only their curves speak: no suspension order ever, a
contracted capacity on file, no meter replacement, not a meter known to go offline. A zero in a curve is a
meter reading 0 kW without voltage (offline); a row missing from the file is a reading not delivered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import Feed
from .common import day_start_utc, end_of_day, rng_for
from .generators import DayOutput
from .load_profiles import HISTORY_DAYS, SLOTS
from .power_quality import replacements
from .run import Simulator
from .scenario import Scenario

POWER_FEED = "power_load_readings"
CABLE_FEED = "cable_temperature_readings"
SLOT = pd.Timedelta(minutes=15)
SIMULATED_FROM = dt.date(2026, 6, 22)  # a Monday: no Chinese public holiday for the next twelve weeks
SEPARATORS = (";", "\t", ",")  # in order of preference when several split every line alike
MISSING_WORDS = {"", "na", "n/a", "nan", "null", "none", "-"}
PARSED_SHARE = 0.9  # a column is numbers (timestamps) when this share of its filled cells parse
OFFSET = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}:?\d{2})$"  # a time and its UTC offset

# the shapes injected on top of the real curves
WORKING_HOURS = (32, 72)  # slots of 08:00 and 18:00 local time
WORKING_LEVEL = 0.4  # a working day: mean load of its working hours >= this x the typical daily p90
STEP_INTERVALS = 8  # a step or a drop lasts two hours
STEP_UP, STEP_DOWN = 1.7, 0.3
OVERLOAD_RATIO = (0.95, 1.05)
OVERLOAD_INTERVALS = (4, 8)  # one to two hours
CABLE_C = (72.0, 80.0)
CABLE_INTERVALS = (3, 6)  # 45 to 90 minutes
PEAK_CEILING = 0.8  # a scaled curve never reads above this x the contracted capacity
SHAPES = {
    "step_up": "abnormal_fluctuation",
    "step_down": "abnormal_fluctuation",
    "overload": "overload",
    "cable_heating": "cable_over_temperature",
}


# ---------------------------------------------------------------- reading a CSV of load curves
@dataclass(frozen=True)
class LoadCurves:
    """Load curves on a complete 15-minute grid of naive local times: NaN where the file has no reading."""

    path: Path
    loads: pd.DataFrame  # index: 15-minute timestamps (naive local); one column per curve
    timestamp_column: str
    separator: str
    rows: int  # data rows in the file
    duplicates: int  # rows dropped because their timestamp came earlier in the file
    skipped: dict[str, str]  # columns that are not load curves, and why

    @property
    def start(self) -> pd.Timestamp:
        return self.loads.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """End of the last interval."""
        return self.loads.index[-1] + SLOT

    def describe(self) -> str:
        sep = {"\t": "tab", ";": "';'", ",": "','"}[self.separator]
        missing = int(self.loads.isna().sum().sum())
        zeros = int((self.loads == 0).sum().sum())
        lines = [
            f"read {self.path.name}: {self.rows:,} rows ({sep}-separated), timestamps from column "
            f"{self.timestamp_column!r}, {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} "
            f"({(self.end - self.start) / pd.Timedelta(days=1):.1f} days)",
            f"  {len(self.loads.columns)} curve(s): {', '.join(self.loads.columns)}; {missing:,} readings "
            f"missing, {zeros:,} zero readings (meter offline), {self.duplicates} duplicated timestamp(s) "
            "dropped (the first kept)",
        ]
        lines += [f"  not a load curve: {name} ({why})" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _separator(path: Path, text: str) -> str:
    """The separator that splits the first lines into the same number (> 1) of fields."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        raise ValueError(f"{path}: the file is empty; give a CSV with a timestamp column and load columns")
    for sep in SEPARATORS:
        counts = {line.count(sep) for line in lines}
        if len(counts) == 1 and counts != {0}:
            return sep
    best = max(SEPARATORS, key=lambda sep: lines[0].count(sep))
    if not lines[0].count(best):
        raise ValueError(
            f"{path}: no separator found (';', ',' or tab) in its first line; give a CSV with a "
            "timestamp column and load columns"
        )
    return best


def _numbers(text: pd.Series) -> pd.Series:
    """Numbers written with a decimal point or a decimal comma (thousands separators allowed when both
    appear); NaN where a cell is empty or not a number."""
    text = text.str.strip()
    has_comma = text.str.contains(",", regex=False)
    has_point = text.str.contains(".", regex=False)
    comma_decimal = text.str.rfind(",") > text.str.rfind(".")
    both = has_comma & has_point
    normal = text.where(~both, text.where(~comma_decimal, text.str.replace(".", "", regex=False)))
    normal = normal.where(~(both & ~comma_decimal), text.str.replace(",", "", regex=False))
    normal = normal.str.replace(",", ".", regex=False)
    return pd.to_numeric(normal, errors="coerce")


def _filled(text: pd.Series) -> pd.Series:
    return ~text.str.strip().str.lower().isin(MISSING_WORDS)


def _timestamps(text: pd.Series) -> pd.Series | None:
    """Naive local timestamps, if this column holds them (offsets written in the file are dropped:
    the wall-clock time is kept)."""
    filled = _filled(text)
    if not filled.any():
        return None
    wall_clock = text.str.strip().str.replace(OFFSET, r"\1", regex=True)  # a written offset is dropped
    candidates = []
    for dayfirst in (False, True):  # 03.04.2016: April in Europe; the reading that parses (in order) wins
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "could not infer format": cell by cell, then
                parsed = pd.to_datetime(wall_clock.where(filled), errors="coerce", dayfirst=dayfirst)
        except (ValueError, TypeError, OverflowError):
            continue
        if pd.api.types.is_datetime64_any_dtype(parsed):
            ordered = (parsed.dropna().diff().dropna() >= pd.Timedelta(0)).mean()
            candidates.append((parsed[filled].notna().mean(), ordered, parsed))
    if not candidates:
        return None
    stamps = max(candidates, key=lambda c: (c[0], c[1]))[2]
    if stamps[filled].notna().mean() < PARSED_SHARE:
        return None
    return stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _sort_columns(
    table: pd.DataFrame, wanted: list[str] | None
) -> tuple[str | None, pd.Series | None, dict[str, pd.Series], dict[str, str]]:
    """The timestamp column (the first of date-times) and its values, the load curves (numeric columns,
    never negative; only the ``wanted`` ones when given) and the columns that are not curves, with why."""
    stamp_column, stamps, curves, skipped = None, None, {}, {}
    for name in table.columns:
        values = table[name]
        filled = _filled(values)
        numbers = _numbers(values)
        numeric = bool(filled.any()) and numbers[filled].notna().mean() >= PARSED_SHARE
        if stamp_column is None and not numeric:
            parsed = _timestamps(values)
            if parsed is not None:
                stamp_column, stamps = name, parsed
                continue
        if wanted and name not in wanted:
            continue
        if not numeric:
            skipped[name] = "not numbers"
        elif (numbers < 0).any():
            skipped[name] = f"negative values (down to {numbers.min():g}): a load is never below 0"
        else:
            curves[name] = numbers
    return stamp_column, stamps, curves, skipped


def read_load_curves(path: Path | str, columns: list[str] | None = None) -> LoadCurves:
    """The load curves of a CSV file: the first column whose cells are date-times is the timestamp (naive
    local time, the start of each 15-minute interval); every numeric column is a curve (``columns``:
    only these). ``;`` or ``,`` separated (sniffed), decimal point or comma. A timestamp the file repeats
    keeps its first row; a row the file lacks is a missing reading; a 0 is a meter reading 0 (offline)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such load-curve file")
    text = _read_text(path)
    separator = _separator(path, text)
    table = pd.read_csv(
        io.StringIO(text), sep=separator, dtype=str, keep_default_na=False, skipinitialspace=True
    )
    table.columns = [str(c).strip() for c in table.columns]
    unknown = [c for c in columns or [] if c not in table.columns]
    if unknown:
        raise ValueError(f"{path}: no column {unknown} (columns: {', '.join(table.columns)})")
    stamp_column, stamps, curves, skipped = _sort_columns(table, columns)
    if stamp_column is None:
        raise ValueError(
            f"{path}: no column of date-times (e.g. 2024-03-01 00:15) found among {', '.join(table.columns)}; "
            "the first column that parses as date-times is the start of each 15-minute interval"
        )
    refused = {
        c: "the timestamp column" if c == stamp_column else skipped[c]
        for c in columns or []
        if c not in curves
    }
    if refused:
        why = "; ".join(f"{c}: {reason}" for c, reason in refused.items())
        raise ValueError(f"{path}: not a load curve ({why})")
    if not curves:
        raise ValueError(
            f"{path}: no numeric load column besides the timestamp column {stamp_column!r}"
            + (f" ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else "")
        )
    return _on_grid(path, table, separator, stamp_column, stamps, curves, skipped)


def _on_grid(
    path: Path,
    table: pd.DataFrame,
    separator: str,
    stamp_column: str,
    stamps: pd.Series,
    curves: dict[str, pd.Series],
    skipped: dict[str, str],
) -> LoadCurves:
    frame = pd.DataFrame(curves)
    frame.index = stamps.dt.floor("15min")
    frame = frame[frame.index.notna()]
    duplicated = frame.index.duplicated(keep="first")
    frame = frame[~duplicated]
    if len(frame) < 2:
        raise ValueError(f"{path}: fewer than two timestamps in column {stamp_column!r}")
    frame = frame.sort_index()
    spacing = pd.Series(frame.index).diff().median()
    if spacing != SLOT:
        raise ValueError(
            f"{path}: the timestamps of column {stamp_column!r} are {spacing} apart, not 15 minutes; "
            "give 15-minute load curves"
        )
    grid = pd.date_range(frame.index[0], frame.index[-1], freq="15min")
    return LoadCurves(
        path=path,
        loads=frame.reindex(grid),
        timestamp_column=stamp_column,
        separator=separator,
        rows=len(table),
        duplicates=int(duplicated.sum()),
        skipped=skipped,
    )


# ---------------------------------------------------------------- the spliced meters and their events
@dataclass(frozen=True)
class SplicedMeter:
    """A simulated metered enterprise whose readings are a window of a real curve, scaled to it."""

    index: int  # row of World.metered
    enterprise_id: str
    meter_id: str
    cable_id: str | None  # its monitored incoming cable, if the world has one on it
    capacity_kw: float
    peak_fraction: float
    curve: str
    window_start: pd.Timestamp  # naive local time in the curve's file
    factor: float  # kW per unit of the curve
    loads: np.ndarray  # (days, 96) kW before events; NaN: no reading, 0: meter offline

    @property
    def nominal_voltage(self) -> float:
        return 10_000.0 if self.capacity_kw >= 800 else 380.0  # as the power generator does

    @property
    def coverage(self) -> float:
        return float(np.isfinite(self.loads).mean())

    @property
    def zero_share(self) -> float:
        return float((self.loads == 0).mean())


@dataclass(frozen=True)
class InjectedEvent:
    shape: str  # step_up, step_down, overload, cable_heating
    meter: int  # position in RealCurvePlan.meters
    day: int  # index of the simulated day
    first: int  # first slot
    values: np.ndarray  # kW (load shapes) or C (cable) of its intervals
    threshold: float

    @property
    def rule(self) -> str:
        return SHAPES[self.shape]

    @property
    def last(self) -> int:
        return self.first + len(self.values) - 1

    @property
    def peak(self) -> float:
        return float(self.values.min() if self.shape == "step_down" else self.values.max())


@dataclass(frozen=True)
class RealCurvePlan:
    first_day: dt.date
    days: int
    judged_from: int  # index of the first day of the judged weeks
    meters: list[SplicedMeter]
    events: list[InjectedEvent]

    def day(self, index: int) -> dt.date:
        return self.first_day + dt.timedelta(days=index)

    def index(self, day: dt.date) -> int | None:
        k = (day - self.first_day).days
        return k if 0 <= k < self.days else None

    @property
    def all_days(self) -> list[dt.date]:
        return [self.day(k) for k in range(self.days)]

    @property
    def judged_days(self) -> list[dt.date]:
        return [self.day(k) for k in range(self.judged_from, self.days)]

    @property
    def enterprise_ids(self) -> list[str]:
        return [m.enterprise_id for m in self.meters]


def eligible_meters(sim: Simulator, first_day: dt.date, last_day: dt.date) -> np.ndarray:
    """Rows of World.metered that may carry a real curve: a contracted capacity on file, no suspension
    order ever, a meter that is neither flaky nor replaced from the lookback before ``first_day`` on;
    those with a monitored cable first (they take cable events too), each group in a seeded order."""
    world = sim.ctx.world
    profiles = world.operating_profiles
    suspended = profiles["has_suspension_history"].to_numpy()
    ok = profiles["role"].isin(["regular", "rough"]).to_numpy() & ~suspended  # not flaky, not no_capacity
    since = first_day - dt.timedelta(days=HISTORY_DAYS)
    for r in replacements(sim.ctx, last_day):
        if r.day >= since:
            ok[r.meter] = False
    has_cable = world.metered["enterprise_id"].isin(world.cables["enterprise_id"]).to_numpy()
    order = rng_for(sim.seed, "real-curves", "meters").permutation(np.flatnonzero(ok))
    return order[np.argsort(~has_cable[order], kind="stable")]


def city_scale(
    meters: int, first_day: dt.date, last_day: dt.date, seed: int | None, scenario: Scenario | None
) -> float:
    """The smallest simulated city (from 20 metered enterprises up) with ``meters`` that may take a curve."""
    scale = 0.0014
    while True:
        city = Simulator(Path("."), scale=scale, seed=seed, scenario=scenario)
        if len(eligible_meters(city, first_day, last_day)) >= meters or scale >= 1:
            return scale
        scale = min(1.0, scale * 1.4)


def _window_starts(curves: LoadCurves, name: str, days: int, weekday: int) -> list[pd.Timestamp]:
    """Local midnights on ``weekday`` from which ``days`` days of the curve are in the file, at least
    half of them read and some above 0."""
    values = curves.loads[name]
    first = curves.start.normalize()
    if first < curves.start:
        first += pd.Timedelta(days=1)
    first += pd.Timedelta(days=(weekday - first.weekday()) % 7)
    starts = []
    span = pd.Timedelta(days=days)
    for start in pd.date_range(first, curves.end - span, freq="7D"):
        window = values[start : start + span - SLOT]
        if window.notna().mean() >= 0.5 and (window > 0).any():
            starts.append(start)
    return starts


def plan_windows(
    curves: LoadCurves, count: int, days: int, weekday: int, seed: int
) -> list[tuple[str, pd.Timestamp]]:
    """(curve, window start) of ``count`` meters: spread over the curves in turn, and over each curve's
    span at seeded offsets (one in each of equal parts of the span)."""
    starts = {name: _window_starts(curves, name, days, weekday) for name in curves.loads.columns}
    usable = [name for name, options in starts.items() if options]
    if not usable:
        weekday_name = dt.date(2024, 1, 1 + weekday).strftime("%A")
        span = (curves.end - curves.start) / pd.Timedelta(days=1)
        raise ValueError(
            f"{curves.path}: no curve holds {days} days ({days // 7} weeks, --weeks) from a {weekday_name} "
            f"midnight with at least half of its readings: the file spans {span:.1f} days; give a longer "
            "file or fewer --weeks"
        )
    per_curve = {name: [m for m in range(count) if usable[m % len(usable)] == name] for name in usable}
    rng = rng_for(seed, "real-curves", "windows")
    chosen: dict[int, tuple[str, pd.Timestamp]] = {}
    for name, meters in per_curve.items():
        options = starts[name]
        parts = np.array_split(np.arange(len(options)), len(meters)) if meters else []
        for m, part in zip(meters, parts, strict=True):
            pick = int(rng.choice(part)) if len(part) else int(rng.integers(0, len(options)))
            chosen[m] = (name, options[pick])
    return [chosen[m] for m in range(count)]


def spliced_meter(
    sim: Simulator, row: int, curves: LoadCurves, curve: str, start: pd.Timestamp, days: int
) -> SplicedMeter:
    """The window scaled so that its 99th percentile is the enterprise's normal peak (peak_fraction x
    capacity) and its highest reading at most PEAK_CEILING x capacity."""
    world = sim.ctx.world
    enterprise = world.metered.iloc[row]
    cables = world.cables[world.cables["enterprise_id"] == enterprise["enterprise_id"]]
    grid = pd.date_range(start, periods=days * SLOTS, freq="15min")
    raw = curves.loads[curve].reindex(grid).to_numpy(dtype=float).reshape(days, SLOTS)
    positive = raw[raw > 0]
    capacity = float(enterprise["capacity_kw"])
    peak_fraction = float(enterprise["peak_fraction"])
    factor = min(
        peak_fraction * capacity / np.percentile(positive, 99), PEAK_CEILING * capacity / positive.max()
    )
    return SplicedMeter(
        index=row,
        enterprise_id=str(enterprise["enterprise_id"]),
        meter_id=str(enterprise["meter_id"]),
        cable_id=str(cables["cable_id"].iat[0]) if len(cables) else None,
        capacity_kw=capacity,
        peak_fraction=peak_fraction,
        curve=curve,
        window_start=start,
        factor=float(factor),
        loads=raw * factor,
    )


def _read(x: np.ndarray) -> np.ndarray:
    """Readings above 0 (a NaN, a missing reading, compares False)."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(x, nan=-1.0) > 0


def _complete_days(loads: np.ndarray) -> np.ndarray:
    """Days with at least 72 usable readings (spec: above 0, and not the first after a gap or an outage)."""
    read = _read(loads).ravel()
    usable = read & np.r_[False, read[:-1]]
    return usable.reshape(loads.shape).sum(axis=1) >= 72


def _judgeable(loads: np.ndarray, day: int) -> bool:
    """The relative rules can judge the day: 5 complete days in its lookback (the meter has a level)."""
    return int(_complete_days(loads)[max(0, day - HISTORY_DAYS) : day].sum()) >= 5


def _working_days(loads: np.ndarray) -> np.ndarray:
    """Days whose 08:00-18:00 mean load is at least WORKING_LEVEL x the meter's typical daily p90."""
    a, b = WORKING_HOURS
    read = _read(loads)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a day without a reading has no mean
        p90 = np.array(
            [
                np.percentile(day[ok], 90) if ok.sum() >= 48 else np.nan
                for day, ok in zip(loads, read, strict=True)
            ]
        )
        typical = np.nanmedian(p90) if np.isfinite(p90).any() else np.inf
        hours = np.where(read[:, a:b], loads[:, a:b], np.nan)
        mean = np.nanmean(hours, axis=1)
    return (read[:, a:b].sum(axis=1) >= 30) & (np.nan_to_num(mean) >= WORKING_LEVEL * typical)


def _options(shape: str, meter: SplicedMeter, day: int, length: int, working: np.ndarray) -> list[int]:
    """First slots where ``shape`` of ``length`` intervals can go on ``day`` of ``meter``."""
    read = _read(meter.loads[day])
    if shape == "cable_heating":
        return list(range(36, SLOTS - length - 1)) if meter.cable_id else []
    if shape == "overload":
        return [a for a in range(4, SLOTS - length - 4) if read[a - 1 : a + length + 1].all()]
    if not working[day] or not _judgeable(meter.loads, day):
        return []
    a, b = WORKING_HOURS
    return [
        s
        for s in range(a, b - length + 1)
        if read[s : s + length].all()
        and read[s - length : s].sum() >= 6
        and read[s + length : s + 2 * length].sum() >= 6
    ]


def _event_values(
    shape: str, meter: SplicedMeter, day: int, first: int, length: int, rng
) -> tuple[np.ndarray, float]:
    """The event's readings (kW, or C for a cable) and the threshold its truth records."""
    normal = meter.loads[day, first : first + length]
    if shape == "step_up":
        return normal * STEP_UP, 1.5 * float(normal.mean())
    if shape == "step_down":
        return normal * STEP_DOWN, float(normal.mean()) / 1.5
    if shape == "overload":
        return meter.capacity_kw * rng.uniform(*OVERLOAD_RATIO, length), 0.9 * meter.capacity_kw
    hot = rng.uniform(*CABLE_C)
    shape_up = np.minimum(1.0, (np.arange(length) + 1) / 2)
    return np.maximum(72.0, hot * (0.97 + 0.03 * shape_up)), 70.0


def _length(shape: str, rng: np.random.Generator) -> int:
    if shape == "overload":
        return int(rng.integers(OVERLOAD_INTERVALS[0], OVERLOAD_INTERVALS[1] + 1))
    if shape == "cable_heating":
        return int(rng.integers(CABLE_INTERVALS[0], CABLE_INTERVALS[1] + 1))
    return STEP_INTERVALS


def _place_event(
    meters: list[SplicedMeter], m: int, days: list[int], working: np.ndarray, rng: np.random.Generator
) -> InjectedEvent | None:
    """One event on one of ``days`` of meter ``m``: the shapes in a random order, the first that fits."""
    meter = meters[m]
    for shape in rng.permutation(list(SHAPES)):
        length = _length(str(shape), rng)
        options = {d: _options(str(shape), meter, d, length, working) for d in days}
        options = {d: slots for d, slots in options.items() if slots}
        if options:
            day = int(rng.choice(sorted(options)))
            first = int(rng.choice(options[day]))
            values, threshold = _event_values(str(shape), meter, day, first, length, rng)
            return InjectedEvent(str(shape), m, day, first, values, threshold)
    return None


def plan_events(
    meters: list[SplicedMeter], judged_from: int, days: int, per_week: float, seed: int
) -> list[InjectedEvent]:
    """About ``per_week`` events per meter and judged week, never two on one meter on one day: a
    2-hour step to 1.7x or drop to 0.3x of the load in working hours (abnormal_fluctuation, on a day the
    relative rules can judge: the meter has 5 complete days of history), the load raised to 0.95-1.05 x
    capacity for 1-2 hours (overload), a cable at 72 C or more for 45-90 minutes (cable_over_temperature,
    on a meter with a monitored cable)."""
    events = []
    whole, fraction = math.floor(per_week), per_week - math.floor(per_week)
    for m, meter in enumerate(meters):
        working = _working_days(meter.loads)
        for week_start in range(judged_from, days, 7):
            rng = rng_for(seed, "real-curves", "events", meter.enterprise_id, week_start)
            free = list(range(week_start, min(days, week_start + 7)))
            for _ in range(whole + int(rng.random() < fraction)):
                event = _place_event(meters, m, free, working, rng)
                if event is None:
                    break
                events.append(event)
                free.remove(event.day)
    return events


# ---------------------------------------------------------------- the simulator that delivers them
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) slots of the runs of True in a day's ``mask``."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


class RealCurveSimulator(Simulator):
    """The Simulator, with some metered enterprises reading real load curves (``plan``): what the power
    feed delivers for a day has their rows replaced by the curves (with the injected events), what the
    cable feed delivers has their cables' simulated heating taken out and the injected heating put in,
    and the day's truth has their simulated anomalies, near misses and data problems replaced by the real
    mode's (the injected events; the curve's missing and zero readings as data problems)."""

    def __init__(
        self,
        sources_dir: Path,
        curves: LoadCurves,
        *,
        meters: int = 16,
        weeks: int = 6,
        judged_weeks: int = 2,
        events_per_meter_week: float = 1.0,
        seed: int | None = None,
        scenario: Scenario | None = None,
        scale: float | None = None,
    ) -> None:
        if meters < 1:
            raise ValueError(f"--meters must be at least 1, got {meters}")
        if not 1 <= judged_weeks < weeks:
            raise ValueError(
                f"--judged-weeks must be at least 1 and below --weeks (the weeks before are the rules' "
                f"history), got --weeks {weeks} --judged-weeks {judged_weeks}"
            )
        if events_per_meter_week < 0 or events_per_meter_week > 7:
            raise ValueError(f"--events-per-meter-week must be within [0, 7], got {events_per_meter_week}")
        days = 7 * weeks
        first_day = SIMULATED_FROM
        last_day = first_day + dt.timedelta(days=days - 1)
        if scale is None:
            scale = city_scale(meters, first_day, last_day, seed, scenario)
        super().__init__(sources_dir, scale=scale, seed=seed, scenario=scenario)
        rows = eligible_meters(self, first_day, last_day)
        if len(rows) < meters:
            raise ValueError(
                f"--meters {meters}: the simulated city at scale {scale} has only {len(rows)} meters that "
                "may take a curve"
            )
        windows = plan_windows(curves, meters, days, first_day.weekday(), self.seed)
        spliced = [
            spliced_meter(self, int(row), curves, curve, start, days)
            for row, (curve, start) in zip(rows[:meters], windows, strict=True)
        ]
        judged_from = days - 7 * judged_weeks
        events = plan_events(spliced, judged_from, days, events_per_meter_week, self.seed)
        self.curves = curves
        self.plan = RealCurvePlan(first_day, days, judged_from, spliced, events)
        self._spliced = set(self.plan.enterprise_ids)
        self._cables = {m.cable_id for m in spliced if m.cable_id}

    # ---------------------------------------------------------------- what a day delivers
    def delivery(self, feed: Feed, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, DayOutput, np.ndarray]:
        frame, late_truth, today, protected = super().delivery(feed, day)
        k = self.plan.index(day)
        if k is None or feed.name not in (POWER_FEED, CABLE_FEED):
            return frame, late_truth, today, protected
        if feed.name == POWER_FEED:
            rows = self._meter_rows(day, k)
            drop = frame["enterprise_id"].isin(self._spliced).to_numpy()
            quality = [q for q in today.data_quality if q["enterprise_id"] not in self._spliced]
            quality += self._data_quality(day, k)
        else:
            rows = self._cable_rows(today.frame, day, k)
            drop = frame["cable_id"].isin(self._cables).to_numpy()
            quality = today.data_quality
        frame, late_truth, protected = _replace_rows(frame, late_truth, protected, drop, rows)
        feed_events = [
            e
            for e in self.plan.events
            if e.day == k and (e.shape == "cable_heating") == (feed.name == CABLE_FEED)
        ]
        today = dataclasses.replace(
            today,
            anomalies=[a for a in today.anomalies if a["enterprise_id"] not in self._spliced]
            + [self._truth(e, day) for e in feed_events],
            near_misses=[n for n in today.near_misses if n["enterprise_id"] not in self._spliced],
            data_quality=quality,
        )
        return frame, late_truth, today, protected

    def _loads(self, k: int) -> np.ndarray:
        """(meters, 96) kW of day ``k`` with the load events put in."""
        loads = np.stack([m.loads[k] for m in self.plan.meters])
        for e in self.plan.events:
            if e.day == k and e.shape != "cable_heating":
                loads[e.meter, e.first : e.last + 1] = e.values
        return loads

    def _meter_rows(self, day: dt.date, k: int) -> pd.DataFrame:
        loads = self._loads(k)
        meters = self.plan.meters
        starts = self._slots_utc(day)
        voltage = np.array([m.nominal_voltage for m in meters])[:, None] * (loads > 0)
        # to the watt, and never a positive reading rounded to 0; the current precise enough for the feed's
        # power-factor check on a reading of a few watts
        with np.errstate(invalid="ignore"):
            loads = np.where(loads > 0, np.maximum(np.round(loads, 3), 0.001), loads)
        current = np.round(loads * 1000 / (np.sqrt(3) * np.maximum(voltage, 1.0) * 0.9), 4)
        keep = np.isfinite(loads).ravel()
        reading_at = pd.DatetimeIndex(np.tile(starts.tz_localize(None).to_numpy(), len(meters))).tz_localize(
            "UTC"
        )
        updated_at = reading_at + pd.Timedelta(seconds=960)
        last = end_of_day(day)
        return pd.DataFrame(
            {
                "meter_id": np.repeat([m.meter_id for m in meters], SLOTS)[keep],
                "enterprise_id": np.repeat([m.enterprise_id for m in meters], SLOTS)[keep],
                "reading_at": reading_at[keep],
                "load_kw": loads.ravel()[keep],
                "current_a": current.ravel()[keep],
                "voltage_v": np.round(voltage.ravel()[keep], 1),
                "updated_at": updated_at[keep].where(updated_at[keep] <= last, last),
            }
        )

    def _cable_rows(self, generated: pd.DataFrame, day: dt.date, k: int) -> pd.DataFrame:
        """The spliced enterprises' cables as generated, less the simulated heating (readings above the
        scenario's normal_max_c, interpolated over), plus the injected heating of the day."""
        normal_max = float(self.scenario.cable["normal_max_c"])
        rows = generated[generated["cable_id"].isin(self._cables)].sort_values(["cable_id", "reading_at"])
        rows = rows.reset_index(drop=True)
        temperature = rows["temperature_c"].where(rows["temperature_c"] <= normal_max)
        rows["temperature_c"] = (
            temperature.groupby(rows["cable_id"])
            .transform(lambda t: t.interpolate(limit_direction="both"))
            .round(1)
        )
        slot = ((rows["reading_at"] - day_start_utc(day)) // SLOT).to_numpy()
        for e in self.plan.events:
            if e.day != k or e.shape != "cable_heating":
                continue
            cable = self.plan.meters[e.meter].cable_id
            mine = (rows["cable_id"] == cable).to_numpy()
            for j, value in enumerate(e.values):
                rows.loc[mine & (slot == e.first + j), "temperature_c"] = round(float(value), 1)
            before = mine & (slot == e.first - 1)
            warm = rows.loc[before, "temperature_c"]
            rows.loc[before, "temperature_c"] = np.minimum(69.4, np.maximum(warm, (warm + 72.0) / 2)).round(1)
        return rows

    def _slots_utc(self, day: dt.date) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(day_start_utc(day) + SLOT * np.arange(SLOTS))

    def _truth(self, e: InjectedEvent, day: dt.date) -> dict:
        meter = self.plan.meters[e.meter]
        starts = self._slots_utc(day)
        cable = e.shape == "cable_heating"
        return {
            "anomaly_id": f"{day:%Y%m%d}-real-{e.shape}-{e.meter:03d}",
            "rule": e.rule,
            "feed": CABLE_FEED if cable else POWER_FEED,
            "enterprise_id": meter.enterprise_id,
            "subject_id": meter.cable_id if cable else meter.meter_id,
            "started_at": starts[e.first],
            "ended_at": starts[e.last],
            "intervals": len(e.values),
            "peak_value": round(e.peak, 2),
            "threshold": round(e.threshold, 2),
            "unit": "°C" if cable else "kW",
        }

    def _data_quality(self, day: dt.date, k: int) -> list[dict]:
        """The curves' own data problems of the day: readings the file lacks, readings of 0."""
        starts = self._slots_utc(day)
        records = []
        loads = self._loads(k)
        for meter, day_loads in zip(self.plan.meters, loads, strict=True):
            for kind, mask, what in (
                ("missing_readings", ~np.isfinite(day_loads), "no reading in the curve's file"),
                ("meter_offline", day_loads == 0, "the curve reads 0: sent as 0 kW, 0 V and 0 A"),
            ):
                for a, b in _runs(mask):
                    records.append(
                        {
                            "kind": kind,
                            "enterprise_id": meter.enterprise_id,
                            "subject_id": meter.meter_id,
                            "started_at": starts[a],
                            "ended_at": starts[b],
                            "detail": f"{b - a + 1} interval(s): {what} ({meter.curve})",
                        }
                    )
        return records


def _replace_rows(
    frame: pd.DataFrame, late_truth: pd.DataFrame, protected: np.ndarray, drop: np.ndarray, rows: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """A delivery (the day's rows, then the late rows of the day before, which ``late_truth`` numbers)
    with the ``drop`` rows taken out and ``rows`` put in before the late ones, protected from defects."""
    on_time = len(frame) - len(late_truth)
    keep_today, keep_late = ~drop[:on_time], ~drop[on_time:]
    today, late = frame.iloc[:on_time][keep_today], frame.iloc[on_time:][keep_late]
    late_truth = late_truth[keep_late].copy() if len(late_truth) else late_truth
    start = len(today) + len(rows)
    if len(late_truth):
        late_truth["row_number"] = np.arange(start, start + len(late_truth))
    merged = pd.concat([today, rows[frame.columns], late], ignore_index=True)
    shield = np.concatenate(
        [protected[:on_time][keep_today], np.ones(len(rows), bool), protected[on_time:][keep_late]]
    )
    return merged, late_truth, shield
