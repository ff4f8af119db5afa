"""Detection quality of the power warnings (``marts.fct_power_anomalies``) against the ground truth of
what was injected (``edw evaluate``): the simulator's ``<truth>/<day>/`` files, or the events put on
real load curves (``evaluate_real_curves``).

Pairing, one to one: a warning and an injected event pair when they are of the same enterprise and the
same rule family (seed anomaly_rule_precedence's event_group: the meter's load rules, the cable's) and
overlap in time, with one 15-minute interval of slack either side. An event of a load rule is detected
by a warning of its rule or by one of another load rule: precedence keeps one warning per physical event,
the most specific (an injected step that reached the contracted capacity warns as an overload). Among
several warnings of one event, one is its match (its own rule first) and the others are *splits*: the
event counts once, the splits are neither matches nor false alarms. A warning that overlaps no event is a
*false alarm*. Per rule:

- precision = matched warnings / warnings, recall = detected events / injected events;

and over all rules the false alarms per meter-week (false alarms / (judged meters x judged days / 7)),
the near misses (``near_misses.parquet``) a false alarm fell on and the false alarms inside (or next to) a
data problem of the truth (``data_quality.parquet``: a meter offline, readings missing...). Both should
be zero.

Judged days: those on which at least half of the meters that read are judged by the relative rules
(``intermediate.int_power_readings_scored.is_judged_day``: a level, enough similar days, no suspension
history). Only their events and warnings count; the days before are the rules' history.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import LOCAL_TZ
from .warehouse import connect

POWER_RULES = ("overload", "suspension_violation", "surge", "abnormal_fluctuation", "cable_over_temperature")
# seed anomaly_rule_precedence, when the warehouse has none: rule -> (event_group, precedence)
RULE_GROUPS = {
    "overload": ("load", 1),
    "suspension_violation": ("load", 2),
    "surge": ("load", 3),
    "abnormal_fluctuation": ("load", 4),
    "cable_over_temperature": ("cable", 1),
}
SLOT = pd.Timedelta(minutes=15)
SLACK = pd.Timedelta(minutes=15)
JUDGED_SHARE = 0.5  # a day is judged when at least this share of its meters is judged
WARNINGS_SQL = "select anomaly_id, enterprise_id, rule, started_at, ended_at from marts.fct_power_anomalies"
PRECEDENCE_SQL = "select rule, event_group, precedence from reference.anomaly_rule_precedence"
METER_DAYS_SQL = """
select meter_id, enterprise_id, reading_date, bool_or(coalesce(is_judged_day, false)) as is_judged
from intermediate.int_power_readings_scored
group by meter_id, enterprise_id, reading_date
"""
TRUTH_FILES = {
    "anomalies": ["anomaly_id", "rule", "enterprise_id", "subject_id", "started_at", "ended_at"],
    "near_misses": ["kind", "enterprise_id", "subject_id", "started_at", "ended_at"],
    "data_quality": ["kind", "enterprise_id", "subject_id", "started_at", "ended_at"],
}


# ---------------------------------------------------------------- reading
@dataclass(frozen=True)
class Truth:
    """What was injected, one frame per truth file, each with the simulated ``day`` it was written for.
    ``ended_at`` is the start of the last interval, as the truth files write it."""

    anomalies: pd.DataFrame
    near_misses: pd.DataFrame
    data_quality: pd.DataFrame
    days: frozenset[dt.date]  # the days simulated (with an anomalies file, even an empty one)


def _utc(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")


def _truth_file(folders: list[Path], name: str, columns: list[str]) -> pd.DataFrame:
    frames = []
    for folder in folders:
        path = folder / f"{name}.parquet"
        if path.exists():
            frame = pd.read_parquet(path)
            frame["day"] = dt.date.fromisoformat(folder.name)
            frames.append(frame)
    frames = [f for f in frames if len(f)]
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
        for col in ("started_at", "ended_at"):
            empty[col] = pd.Series(dtype="datetime64[us, UTC]")
        return empty.assign(day=pd.Series(dtype="object"))
    truth = pd.concat(frames, ignore_index=True)[[*columns, "day"]]
    truth["started_at"] = _utc(truth["started_at"])
    truth["ended_at"] = _utc(truth["ended_at"])
    return truth


def read_truth(truth_root: Path | str, dates: Iterable[dt.date] | None = None) -> Truth:
    """The truth files of the given days (every day found when ``dates`` is None). A day counts as
    simulated when it has ``anomalies.parquet``; the other two files are read where present."""
    root = Path(truth_root)
    wanted = None if dates is None else {d.isoformat() for d in dates}
    folders = [
        p
        for p in (sorted(root.iterdir()) if root.exists() else [])
        if p.is_dir() and (p / "anomalies.parquet").exists() and (wanted is None or p.name in wanted)
    ]
    anomalies = _truth_file(folders, "anomalies", TRUTH_FILES["anomalies"])
    anomalies = anomalies[anomalies["rule"].isin(POWER_RULES)].reset_index(drop=True)
    return Truth(
        anomalies,
        _truth_file(folders, "near_misses", TRUTH_FILES["near_misses"]),
        _truth_file(folders, "data_quality", TRUTH_FILES["data_quality"]),
        frozenset(dt.date.fromisoformat(p.name) for p in folders),
    )


def load_truth(truth_root: Path | str, dates: Iterable[dt.date] | None = None) -> pd.DataFrame:
    """The injected power anomalies of the given days, with the simulated day in column ``day``."""
    return read_truth(truth_root, dates).anomalies


def _query(warehouse_url: str, sql: str) -> pd.DataFrame:
    warehouse = connect(warehouse_url)
    try:
        return warehouse.query(sql).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any failure means the models are not there to judge
        raise RuntimeError(
            f"cannot read the power models of {warehouse_url} ({type(exc).__name__}: {exc}); "
            "build them first with `edw build`"
        ) from exc
    finally:
        warehouse.close()


def load_warnings(warehouse_url: str) -> pd.DataFrame:
    """The warnings of ``marts.fct_power_anomalies``, with the local day they started in column ``day``."""
    return _with_days(_query(warehouse_url, WARNINGS_SQL))


def _timed(frame: pd.DataFrame) -> pd.DataFrame:
    """``started_at`` and ``ended_at`` as UTC timestamps (hand-made or empty frames too)."""
    frame = frame.copy()
    frame["started_at"] = _utc(frame["started_at"])
    frame["ended_at"] = _utc(frame["ended_at"])
    return frame


def _with_days(warnings: pd.DataFrame) -> pd.DataFrame:
    warnings = _timed(warnings)
    if "day" not in warnings:
        warnings["day"] = warnings["started_at"].dt.tz_convert(LOCAL_TZ).dt.date
    return warnings


def load_rule_groups(warehouse_url: str) -> dict[str, tuple[str, int]]:
    """rule -> (event group, precedence) of seed anomaly_rule_precedence."""
    seed = _query(warehouse_url, PRECEDENCE_SQL)
    return {r.rule: (r.event_group, int(r.precedence)) for r in seed.itertuples()}


def load_meter_days(warehouse_url: str) -> pd.DataFrame:
    """Every meter's local days with readings: meter_id, enterprise_id, reading_date, is_judged (the
    relative rules judge the day)."""
    days = _query(warehouse_url, METER_DAYS_SQL)
    days["reading_date"] = pd.to_datetime(days["reading_date"]).dt.date
    days["is_judged"] = days["is_judged"].astype(bool)
    return days


def judged_days(meter_days: pd.DataFrame, share: float = JUDGED_SHARE) -> list[dt.date]:
    """Days on which at least ``share`` of the meters that read are judged by the relative rules."""
    if meter_days.empty:
        return []
    by_day = meter_days.groupby("reading_date")["is_judged"].mean()
    return sorted(by_day.index[by_day >= share])


# ---------------------------------------------------------------- pairing
def _group(rules: pd.Series, groups: dict[str, tuple[str, int]]) -> pd.Series:
    return rules.map(lambda r: groups.get(r, (r, 99))[0])


def _precedence(rules: pd.Series, groups: dict[str, tuple[str, int]]) -> pd.Series:
    return rules.map(lambda r: groups.get(r, (r, 99))[1])


def _overlapping(
    warnings: pd.DataFrame, items: pd.DataFrame, on: list[str], slack: pd.Timedelta = SLACK
) -> pd.DataFrame:
    """Pairs of a warning (``_w``) and a truth item (``_t``, ``ended_at`` the start of its last interval)
    that share ``on`` and overlap, the item widened by ``slack`` either side."""
    pairs = warnings.merge(items, on=on, suffixes=("_w", "_t"))
    item_start = pairs["started_at_t"] - slack
    item_end = pairs["ended_at_t"] + SLOT + slack
    overlap = (pairs["started_at_w"] < item_end) & (pairs["ended_at_w"] > item_start)
    overlap |= (pairs["started_at_w"] == pairs["ended_at_w"]) & pairs["started_at_w"].between(
        item_start, item_end
    )
    return pairs[overlap]


def _match(candidates: dict[int, list[int]]) -> dict[int, int]:
    """A largest one-to-one matching event -> warning, each event's candidates in order of preference
    (augmenting paths: an event takes a warning from another event that has a different one to take)."""
    owner: dict[int, int] = {}  # warning -> event

    def assign(event: int, seen: set[int]) -> bool:
        for warning in candidates[event]:
            if warning in seen:
                continue
            seen.add(warning)
            if warning not in owner or assign(owner[warning], seen):
                owner[warning] = event
                return True
        return False

    for event in candidates:
        assign(event, set())
    return {event: warning for warning, event in owner.items()}


def _numbered(frame: pd.DataFrame, column: str, groups: dict[str, tuple[str, int]]) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    return frame.assign(**{column: range(len(frame))}, group=_group(frame["rule"], groups))


def _candidates(w: pd.DataFrame, e: pd.DataFrame, groups: dict[str, tuple[str, int]]) -> pd.DataFrame:
    """(warning ``w``, event ``e``) pairs that may match, each event's in order of preference: a warning
    of its own rule, then of the most specific rule; the longest overlap; the earliest."""
    pairs = _overlapping(w, e, ["enterprise_id", "group"])
    event_end = pairs["ended_at_t"] + SLOT
    shared = pairs["ended_at_w"].where(pairs["ended_at_w"] < event_end, event_end) - pairs[
        "started_at_w"
    ].where(pairs["started_at_w"] > pairs["started_at_t"], pairs["started_at_t"])
    pairs = pairs.assign(
        other_rule=pairs["rule_w"] != pairs["rule_t"],
        precedence=_precedence(pairs["rule_w"], groups),
        shared=shared,
    )
    return pairs.sort_values(
        ["e", "other_rule", "precedence", "shared", "started_at_w"], ascending=[1, 1, 1, 0, 1]
    )


def pair(
    warnings: pd.DataFrame, events: pd.DataFrame, groups: dict[str, tuple[str, int]] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Warnings with ``status`` (match, split, false_alarm) and ``event_id``; events with ``detected``,
    ``warning_id`` and ``warning_rule``. Columns needed: anomaly_id, enterprise_id, rule, started_at,
    ended_at (a warning's: the end of its last interval; an event's: the start of its last interval)."""
    groups = groups or RULE_GROUPS
    w, e = _numbered(warnings, "w", groups), _numbered(events, "e", groups)
    candidates = _candidates(w, e, groups)
    by_event = candidates.groupby("e")["w"].agg(list)
    in_time_order = [int(k) for k in e.sort_values(["started_at", "e"])["e"] if k in by_event.index]
    matched = _match({k: by_event[k] for k in in_time_order})  # event -> warning
    event_of = {warning: event for event, warning in matched.items()}
    splits = candidates[candidates["e"].isin(list(matched)) & ~candidates["w"].isin(list(event_of))]
    split_of = (
        splits.sort_values("shared", ascending=False).drop_duplicates("w").set_index("w")["e"].to_dict()
    )
    status = ["match" if k in event_of else "split" if k in split_of else "false_alarm" for k in w["w"]]
    event_ids = [
        e.at[event_of.get(k, split_of.get(k)), "anomaly_id"] if k in event_of or k in split_of else None
        for k in w["w"]
    ]
    found = [matched.get(k) for k in e["e"]]
    return (
        w.drop(columns=["w", "group"]).assign(status=status, event_id=event_ids),
        e.drop(columns=["e", "group"]).assign(
            detected=[k is not None for k in found],
            warning_id=[None if k is None else w.at[k, "anomaly_id"] for k in found],
            warning_rule=[None if k is None else w.at[k, "rule"] for k in found],
        ),
    )


def _truth_group(items: pd.DataFrame) -> pd.Series:
    """A near miss's or data problem's rule family: the cable's for a cable's item (warm_cable), else the
    meter's."""
    return items["kind"].astype(str).str.contains("cable").map({True: "cable", False: "load"})


def _warned(items: pd.DataFrame, false_alarms: pd.DataFrame, groups: dict[str, tuple[str, int]]) -> pd.Series:
    """How many false alarms of its enterprise and family overlap each truth item (with slack)."""
    if items.empty:
        return pd.Series(0, index=items.index, dtype="int64")
    w = false_alarms.assign(group=_group(false_alarms["rule"], groups))
    t = items.assign(group=_truth_group(items), t=range(len(items)))
    hits = _overlapping(w, t, ["enterprise_id", "group"]).groupby("t").size()
    return pd.Series(hits.reindex(range(len(items)), fill_value=0).to_numpy(), index=items.index)


# ---------------------------------------------------------------- scoring
@dataclass
class Evaluation:
    """The scored warnings and events of the judged days (see the module's docstring)."""

    rows: list[dict]  # per rule, then "all"
    judged_days: list[dt.date]
    history_days: list[dt.date]
    meter_weeks: float
    warnings: pd.DataFrame  # the judged days' warnings with status and event_id
    events: pd.DataFrame  # the judged days' events with detected, warning_id and warning_rule
    near_misses: pd.DataFrame  # with warned: false alarms on each
    data_quality: pd.DataFrame  # with warned: false alarms inside or next to each
    false_alarms_in_data_quality: int  # false alarms inside or next to a data problem of the truth
    scope: str = "the simulated city"
    notes: list[str] = field(default_factory=list)
    plan: object | None = None  # on real curves: the RealCurvePlan (meters, windows, events)

    @property
    def total(self) -> dict:
        return self.rows[-1]

    @property
    def false_alarms(self) -> int:
        return int(self.total["false_alarms"])

    @property
    def false_per_meter_week(self) -> float | None:
        return self.false_alarms / self.meter_weeks if self.meter_weeks else None

    @property
    def near_misses_warned(self) -> int:
        return int((self.near_misses["warned"] > 0).sum()) if len(self.near_misses) else 0


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rule_rows(warnings: pd.DataFrame, events: pd.DataFrame, days: int) -> list[dict]:
    rows = []
    for rule in [*POWER_RULES, "all"]:
        raised = warnings if rule == "all" else warnings[warnings["rule"] == rule]
        injected = events if rule == "all" else events[events["rule"] == rule]
        detected = injected[injected["detected"]]
        matched = int((raised["status"] == "match").sum())
        rows.append(
            {
                "rule": rule,
                "days": days,
                "injected": len(injected),
                "detected": len(detected),
                "by_other_rule": int((detected["warning_rule"] != detected["rule"]).sum()),
                "warnings": len(raised),
                "matched_warnings": matched,
                "splits": int((raised["status"] == "split").sum()),
                "false_alarms": int((raised["status"] == "false_alarm").sum()),
                "precision": _share(matched, len(raised)),
                "recall": _share(len(detected), len(injected)),
            }
        )
    return rows


def score_truth(
    warnings: pd.DataFrame,
    truth: Truth,
    dates: Sequence[dt.date],
    meter_weeks: float,
    groups: dict[str, tuple[str, int]] | None = None,
    enterprises: Iterable[str] | None = None,
) -> Evaluation:
    """Pair every warning with the events (all days: a warning just after midnight may be an event of
    the day before) and count those of ``dates``; ``enterprises``: only these."""
    groups = groups or RULE_GROUPS
    warnings = _with_days(warnings)
    anomalies, near, quality = (_timed(f) for f in (truth.anomalies, truth.near_misses, truth.data_quality))
    if enterprises is not None:
        keep = set(enterprises)
        warnings = warnings[warnings["enterprise_id"].isin(keep)]
        anomalies, near, quality = (f[f["enterprise_id"].isin(keep)] for f in (anomalies, near, quality))
    paired_warnings, paired_events = pair(warnings, anomalies, groups)
    days = set(dates)
    judged_warnings = paired_warnings[paired_warnings["day"].isin(days)].reset_index(drop=True)
    judged_events = paired_events[paired_events["day"].isin(days)].reset_index(drop=True)
    false_alarms = judged_warnings[judged_warnings["status"] == "false_alarm"]
    near = near[near["day"].isin(days)].reset_index(drop=True)
    near = near.assign(warned=_warned(near, false_alarms, groups))
    quality = quality[quality["day"].isin(days)].reset_index(drop=True)
    quality = quality.assign(warned=_warned(quality, false_alarms, groups))
    inside = _overlapping(
        false_alarms.assign(group=_group(false_alarms["rule"], groups)),
        quality.assign(group=_truth_group(quality)),
        ["enterprise_id", "group"],
    )
    return Evaluation(
        rows=_rule_rows(judged_warnings, judged_events, len(days)),
        judged_days=sorted(days),
        history_days=[],
        meter_weeks=meter_weeks,
        warnings=judged_warnings,
        events=judged_events,
        near_misses=near,
        data_quality=quality,
        false_alarms_in_data_quality=int(inside["anomaly_id"].nunique()),
    )


def score(warnings: pd.DataFrame, truth: pd.DataFrame, dates: Sequence[dt.date]) -> list[dict]:
    """Per rule (no total): injected, warnings, detected, matched warnings, splits, false alarms,
    precision and recall on ``dates``, of hand-made or loaded frames (``truth``: the injected anomalies,
    with ``day``)."""
    empty = pd.DataFrame(columns=[*TRUTH_FILES["near_misses"], "day"])
    evaluation = score_truth(warnings, Truth(truth, empty, empty, frozenset(dates)), dates, meter_weeks=0)
    return evaluation.rows[:-1]


def evaluate_warehouse(
    warehouse_url: str,
    truth_root: Path | str,
    dates: Iterable[dt.date] | None = None,
    enterprises: Iterable[str] | None = None,
    meter_weeks: float | None = None,
) -> Evaluation:
    """Score the warnings of the warehouse against the truth files: on ``dates`` (default: the judged
    days that have truth), of ``enterprises`` (default: all); false alarms per ``meter_weeks`` (default:
    the meters the relative rules judge on those days x days / 7)."""
    meter_days = load_meter_days(warehouse_url)
    if enterprises is not None:
        meter_days = meter_days[meter_days["enterprise_id"].isin(set(enterprises))]
    truth = read_truth(truth_root)
    simulated = truth.days
    judged = set(judged_days(meter_days)) & simulated
    chosen = sorted(judged if dates is None else set(dates) & simulated)
    history = sorted(d for d in simulated if d not in set(chosen))
    if meter_weeks is None:
        judged_meter_days = meter_days[meter_days["reading_date"].isin(set(chosen)) & meter_days["is_judged"]]
        meter_weeks = judged_meter_days["meter_id"].size / 7
    evaluation = score_truth(
        load_warnings(warehouse_url),
        truth,
        chosen,
        meter_weeks,
        load_rule_groups(warehouse_url),
        enterprises,
    )
    evaluation.history_days = history
    return evaluation


def evaluate(
    warehouse_url: str, truth_root: Path | str, dates: Iterable[dt.date] | None = None
) -> list[dict]:
    """Per rule (no total): the rows of ``evaluate_warehouse``."""
    return evaluate_warehouse(warehouse_url, truth_root, dates).rows[:-1]


# ---------------------------------------------------------------- targets and the table
def missed_targets(
    evaluation: Evaluation,
    min_precision: float | None = None,
    min_recall: float | None = None,
    max_false_per_meter_week: float | None = None,
) -> list[str]:
    """One line per target missed: precision and recall of each rule that has warnings (events), and
    the false alarms per meter-week over all rules."""
    wanted = (min_precision, min_recall, max_false_per_meter_week)
    if all(t is None for t in wanted):
        return []
    if not evaluation.judged_days:
        return ["no judged day: the targets cannot be checked (build more days of history first)"]
    missed = []
    for row in evaluation.rows[:-1]:
        precision, recall = row["precision"], row["recall"]
        if min_precision is not None and precision is not None and precision < min_precision:
            missed.append(
                f"precision of {row['rule']} {precision:.2f} < {min_precision:.2f}: {row['matched_warnings']} of "
                f"{row['warnings']} warnings matched an injected event ({row['false_alarms']} false alarms, "
                f"{row['splits']} splits)"
            )
        if min_recall is not None and recall is not None and recall < min_recall:
            missed.append(
                f"recall of {row['rule']} {recall:.2f} < {min_recall:.2f}: {row['detected']} of "
                f"{row['injected']} injected events detected"
            )
    rate = evaluation.false_per_meter_week
    if max_false_per_meter_week is not None and (rate is None or rate > max_false_per_meter_week):
        shown = "no judged meter-week" if rate is None else f"{rate:.3f}"
        missed.append(
            f"false alarms per meter-week {shown} > {max_false_per_meter_week:g}: {evaluation.false_alarms} "
            f"false alarms over {evaluation.meter_weeks:.1f} meter-weeks"
        )
    return missed


def _days_text(days: Sequence[dt.date]) -> str:
    if not days:
        return "none"
    return f"{len(days)} ({days[0]} .. {days[-1]})" if len(days) > 1 else f"1 ({days[0]})"


def print_evaluation(evaluation: Evaluation, console=None) -> None:
    """The evaluation as a rich table and a few lines under it."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"Power warnings against the injected events: {evaluation.scope}")
    headers = (
        "rule",
        "injected",
        "detected",
        "by other rule",
        "warnings",
        "matched",
        "splits",
        "false alarms",
    )
    for name in headers:
        table.add_column(name, justify="left" if name == "rule" else "right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in evaluation.rows:
        table.add_row(
            row["rule"],
            *(
                str(row[k])
                for k in (
                    "injected",
                    "detected",
                    "by_other_rule",
                    "warnings",
                    "matched_warnings",
                    "splits",
                    "false_alarms",
                )
            ),
            share(row["precision"]),
            share(row["recall"]),
            style="bold" if row["rule"] == "all" else None,
        )
    console.print(table)
    console.print(
        f"judged days: {_days_text(evaluation.judged_days)}; history: {_days_text(evaluation.history_days)}"
    )
    if not evaluation.judged_days:
        console.print("no day to judge yet: fewer than half of the meters have a level and similar days")
        return
    rate = evaluation.false_per_meter_week
    console.print(
        f"false alarms per meter-week: {'-' if rate is None else f'{rate:.3f}'} "
        f"({evaluation.false_alarms} over {evaluation.meter_weeks:.1f} meter-weeks)"
    )
    near = evaluation.near_misses
    warned = near[near["warned"] > 0]["kind"].value_counts().to_dict() if len(near) else {}
    console.print(
        f"near misses warned: {evaluation.near_misses_warned} of {len(near)}"
        + (f" ({', '.join(f'{k} {n}' for k, n in warned.items())})" if warned else "")
    )
    quality = evaluation.data_quality
    kinds = quality[quality["warned"] > 0]["kind"].value_counts().to_dict() if len(quality) else {}
    console.print(
        f"false alarms inside or next to data problems: {evaluation.false_alarms_in_data_quality} "
        f"({len(quality)} episodes in the truth"
        + (
            f"; those with a false alarm: {', '.join(f'{k} {n}' for k, n in kinds.items())})"
            if kinds
            else ")"
        )
    )
    for note in evaluation.notes:
        console.print(note)


# ---------------------------------------------------------------- on real load curves
REAL_DAILY_FEEDS = ("power_load_readings", "cable_temperature_readings")
REAL_SNAPSHOT_FEEDS = ("enterprise_safety_profiles", "production_suspension_orders")
REAL_BUILD = [
    "build",
    "--quiet",
    "--select",
    "+fct_power_anomalies +fct_power_data_quality",
    # only the tests of what this build makes: a test that also reads a mart left out (the hazard loop's
    # link to fct_power_anomalies) would fail on a table that is not there
    "--indirect-selection",
    "cautious",
    "--exclude-resource-type",
    "unit_test",
]


@dataclass(frozen=True)
class RealCurveOptions:
    """``edw evaluate --real-curves``: see RealCurveSimulator for what each number does."""

    csv: Path
    columns: list[str] | None = None
    meters: int = 16
    weeks: int = 6
    judged_weeks: int = 2
    events_per_meter_week: float = 1.0
    seed: int | None = None
    keep: Path | None = None


def _working_folder(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="edw-real-curves-"))
    if keep.exists() and any(keep.iterdir()):
        raise ValueError(f"--keep {keep}: the folder is not empty; give a new or empty folder for the run")
    keep.mkdir(parents=True, exist_ok=True)
    return keep


def _windows_table(sim, console) -> None:
    from rich.table import Table

    plan = sim.plan
    table = Table(title=f"Real curve windows spliced into the simulated city (scale {sim.scale:g})")
    for name in ("meter", "enterprise", "curve", "window (file's local time)", "kW per unit", "capacity kW"):
        table.add_column(name)
    for name in ("read", "zeros", "events"):
        table.add_column(name, justify="right")
    end = pd.Timedelta(days=plan.days) - SLOT
    for m, meter in enumerate(plan.meters):
        table.add_row(
            meter.meter_id + (f" + {meter.cable_id}" if meter.cable_id else ""),
            meter.enterprise_id,
            meter.curve,
            f"{meter.window_start:%Y-%m-%d %a} .. {meter.window_start + end:%Y-%m-%d %H:%M}",
            f"{meter.factor:.3g}",
            f"{meter.capacity_kw:,.0f}",
            f"{meter.coverage:.1%}",
            f"{meter.zero_share:.1%}",
            str(sum(e.meter == m for e in plan.events)),
        )
    console.print(table)
    console.print(
        f"simulated days {plan.day(0)} .. {plan.day(plan.days - 1)}: history until {plan.day(plan.judged_from - 1)}, "
        f"judged from {plan.day(plan.judged_from)}; {len(plan.events)} events injected "
        f"({', '.join(f'{s} {n}' for s, n in pd.Series([e.shape for e in plan.events]).value_counts().items())})"
    )


def _run_days(sim, console) -> None:
    """Simulate, land, validate and load every day of the plan through the platform's ingest."""
    from .embedded import embedded_sources
    from .pipeline.ingest import day_interval, ingest

    days = sim.plan.all_days
    with embedded_sources():
        for day in days:
            started = time.perf_counter()
            feeds = list(REAL_DAILY_FEEDS)
            if day in (days[0], days[-1]):
                feeds += REAL_SNAPSHOT_FEEDS
            sim.simulate_day(day, feeds=feeds)
            loaded = {feed: ingest(feed, *day_interval(day)) for feed in feeds}
            kind = "judged" if day >= sim.plan.day(sim.plan.judged_from) else "history"
            events = sum(1 for e in sim.plan.events if sim.plan.day(e.day) == day)
            rows = ", ".join(
                f"{f.split('_')[0]} {r.rows_loaded:,}"
                + (f" ({r.rows_quarantined} quarantined)" if r.rows_quarantined else "")
                for f, r in loaded.items()
            )
            console.print(
                f"{day} {day:%a} {kind:7} {rows}"
                + (f"; {events} event(s)" if events else "")
                + f" ({time.perf_counter() - started:.1f} s)"
            )


def _build(warehouse_url: str, console) -> None:
    from .transform import run_dbt

    started = time.perf_counter()
    with console.status("dbt build of the power marts"):
        run = run_dbt(REAL_BUILD, warehouse_url=warehouse_url)
    failed = run.failed
    broken = [r for r in failed if not r["node"].startswith(("test.", "unit_test."))]
    console.print(
        f"dbt build of the power marts in {time.perf_counter() - started:.1f} s: "
        f"{len(run.results)} nodes, {len(failed)} not passed"
    )
    for r in failed:
        console.print(f"  [red]{r['status']}[/] {r['node']}: {(r['message'] or '')[:300]}")
    if broken or (not run.success and not run.results):
        raise RuntimeError(f"the dbt build of the power marts failed: {run.error or broken[0]['message']}")


def evaluate_real_curves(options: RealCurveOptions, console, scenario=None) -> Evaluation:
    """The whole pipeline on real load curves: read the CSV, simulate a small city whose spliced
    meters read windows of the curves (events injected in the judged weeks), ingest every day for real,
    build the power marts, and score the spliced meters' warnings on the judged weeks."""
    from .config import temporary_environment
    from .simulator.real_curves import RealCurveSimulator, read_load_curves

    curves = read_load_curves(options.csv, options.columns)
    console.print(curves.describe())
    folder = _working_folder(options.keep)
    data = folder / "data"
    url = f"duckdb:///{data / 'warehouse.duckdb'}"
    started = time.perf_counter()
    try:
        environment = {"EDW_DATA_DIR": str(data), "EDW_WAREHOUSE_URL": url}
        with temporary_environment(environment):
            sim = RealCurveSimulator(
                data / "sources",
                curves,
                meters=options.meters,
                weeks=options.weeks,
                judged_weeks=options.judged_weeks,
                events_per_meter_week=options.events_per_meter_week,
                seed=options.seed,
                scenario=scenario,
            )
            _windows_table(sim, console)
            _run_days(sim, console)
            _build(url, console)
            plan = sim.plan
            evaluation = evaluate_warehouse(
                url,
                data / "sources" / "truth",
                dates=plan.judged_days,
                enterprises=plan.enterprise_ids,
                meter_weeks=len(plan.meters) * len(plan.judged_days) / 7,
            )
            meter_days = load_meter_days(url)
            judged = meter_days[
                meter_days["enterprise_id"].isin(set(plan.enterprise_ids))
                & meter_days["reading_date"].isin(set(plan.judged_days))
            ]
    finally:
        if options.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    evaluation.scope = (
        f"{len(plan.meters)} meters reading {curves.path.name}, {len(plan.judged_days) // 7} judged weeks"
    )
    evaluation.history_days = [d for d in plan.all_days if d not in set(plan.judged_days)]
    evaluation.plan = plan
    evaluation.notes += [
        f"the relative rules judged {int(judged['is_judged'].sum())} of {len(judged)} spliced meter-days of the "
        "judged weeks (the others: too little history or too few similar days)",
        f"run time {time.perf_counter() - started:.0f} s"
        + (f"; working folder kept in {folder}" if options.keep else ""),
    ]
    return evaluation


def events_table(evaluation: Evaluation, console) -> None:
    """The injected events of the judged days and what became of them; the warnings paired with none."""
    from rich.table import Table

    table = Table(title="Injected events and their warnings")
    for name in ("event", "rule", "enterprise", "local start", "intervals", "warning"):
        table.add_column(name)
    for e in evaluation.events.sort_values("started_at").itertuples():
        start = e.started_at.tz_convert(LOCAL_TZ)
        intervals = int((e.ended_at - e.started_at) / SLOT) + 1
        found = f"{e.warning_rule}" if e.detected else "[red]missed[/]"
        table.add_row(
            e.anomaly_id, e.rule, e.enterprise_id, f"{start:%Y-%m-%d %a %H:%M}", str(intervals), found
        )
    console.print(table)
    others = evaluation.warnings[evaluation.warnings["status"] != "match"]
    for w in others.sort_values("started_at").itertuples():
        start, end = w.started_at.tz_convert(LOCAL_TZ), w.ended_at.tz_convert(LOCAL_TZ)
        what = f"split of {w.event_id}" if w.status == "split" else "false alarm"
        console.print(f"  {what}: {w.rule} {w.enterprise_id} {start:%Y-%m-%d %a %H:%M}-{end:%H:%M}")
