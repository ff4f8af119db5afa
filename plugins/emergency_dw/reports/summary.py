"""The run summary: what a run left in the warehouse, read back from it (``edw run`` prints it and writes
it as ``$EDW_DATA_DIR/run_summary.json``).

Rows per feed (extracted, loaded, quarantined, rejected) from ``audit.batches``; the batches of feeds
expected daily that came empty or outside their row-count band; the validation pass rate from
``audit.validation_results``, explained: how many rows each rule held in quarantine (a failing row rule
caught defects in what the sources sent; it does not fail the run); the top enterprises by risk on the
latest risk_date; response-time p50/p90 per channel and interval against the seed response_targets; and
where each output is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..catalog import department, get_feed
from ..pipeline.suites import ROW_COUNT_RULE, expected_daily
from ..warehouse import Warehouse, connect
from . import queries
from .report_settings import ReportSettings, load_report_settings

RUN_SUMMARY = "run_summary.json"  # under EDW_DATA_DIR


@dataclass
class FeedRows:
    feed: str
    department: str
    batches: int
    failed_batches: int
    rows_extracted: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int
    reconciles: bool  # rows_extracted = loaded + quarantined + rejected for every batch


@dataclass
class Validation:
    expectations_evaluated: int  # one per expectation per batch, not skipped
    expectations_passed: int
    expectations_skipped: int  # not run (e.g. a rule whose column was missing)
    pass_rate: float | None  # passed / evaluated
    by_severity: dict[str, dict[str, int]]  # severity -> {evaluated, passed}


@dataclass
class RuleHold:
    """Rows one rule held in quarantine, over the feeds it failed on."""

    rule: str
    severity: str
    feeds: list[str]
    batches: int
    rows: int
    description: str  # what the rule checks (as written for the first feed)


@dataclass
class VolumeFlag:
    """A batch of a feed expected daily that came empty, or outside its row-count band."""

    feed: str
    day: str | None
    batch_id: str
    status: str
    rows_extracted: int
    problem: str


@dataclass
class TopEnterprise:
    rank: int
    enterprise_id: str
    enterprise_name: str | None
    town_name: str | None
    risk_index: float
    risk_level: str
    reasons: str  # the mart's top_factors


@dataclass
class IntervalFigure:
    interval: str
    target_seconds: float | None
    measured: int
    p50_seconds: float | None
    p90_seconds: float | None
    within_target_share: float | None


@dataclass
class ChannelResponse:
    channel: str
    incidents: int
    intervals: list[IntervalFigure]


@dataclass
class RunSummary:
    days: list[str]
    generated_at: str
    warehouse: str
    feeds: list[FeedRows]
    validation: Validation | None
    risk_date: str | None
    risk_level_counts: dict[str, int]
    top_enterprises: list[TopEnterprise]
    response_days: list[str]
    response: list[ChannelResponse]
    outputs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what could not be read, and what to do
    # enterprises red by an open major hazard whatever their index (level_reason open_major_hazard)
    red_by_major_hazard: int = 0
    held_by_rule: list[RuleHold] = field(default_factory=list)  # most rows first
    volume_flags: list[VolumeFlag] = field(default_factory=list)
    validation_explained: list[str] = field(default_factory=list)  # what the pass rate means, in sentences
    failed_reruns: list[queries.FailedRerun] = field(default_factory=list)  # the good load stayed

    @property
    def totals(self) -> dict[str, int]:
        keys = (
            "batches",
            "failed_batches",
            "rows_extracted",
            "rows_loaded",
            "rows_quarantined",
            "rows_rejected",
        )
        return {k: sum(getattr(f, k) for f in self.feeds) for k in keys}

    def to_dict(self) -> dict:
        return {**asdict(self), "totals": self.totals}


def display_url(url: str) -> str:
    """The warehouse URL without its password."""
    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def percentile(values: list[float], fraction: float) -> float | None:
    """Continuous percentile (linear interpolation), as the marts' percentile_cont / quantile_cont."""
    return float(np.percentile(values, fraction * 100)) if values else None


def interval_figure(values: list[float], interval: str, target: float | None) -> IntervalFigure:
    share = sum(v <= target for v in values) / len(values) if values and target is not None else None
    return IntervalFigure(
        interval, target, len(values), percentile(values, 0.5), percentile(values, 0.9), share
    )


def feed_rows(batches: list[queries.Batch]) -> list[FeedRows]:
    by_feed: dict[str, list[queries.Batch]] = {}
    for b in batches:
        by_feed.setdefault(b.feed, []).append(b)
    out = []
    for name, group in by_feed.items():
        try:
            dept = department(get_feed(name).department)
            dept_name = f"{dept.name} ({dept.name_zh})"
        except KeyError:
            dept_name = "not in the catalog"
        out.append(
            FeedRows(
                feed=name,
                department=dept_name,
                batches=len(group),
                failed_batches=sum(b.status == "failed" for b in group),
                rows_extracted=sum(b.rows_extracted for b in group),
                rows_loaded=sum(b.rows_loaded for b in group),
                rows_quarantined=sum(b.rows_quarantined for b in group),
                rows_rejected=sum(b.rows_rejected for b in group),
                reconciles=all(b.reconciles for b in group),
            )
        )
    return out


def validation(results: list[queries.ValidationResult]) -> Validation:
    evaluated = [r for r in results if not r.skipped]
    by_severity: dict[str, dict[str, int]] = {}
    for r in evaluated:
        entry = by_severity.setdefault(r.severity, {"evaluated": 0, "passed": 0})
        entry["evaluated"] += 1
        entry["passed"] += int(bool(r.success))
    passed = sum(bool(r.success) for r in evaluated)
    return Validation(
        expectations_evaluated=len(evaluated),
        expectations_passed=passed,
        expectations_skipped=len(results) - len(evaluated),
        pass_rate=passed / len(evaluated) if evaluated else None,
        by_severity=dict(sorted(by_severity.items())),
    )


def holds_by_rule(
    groups: list[queries.QuarantineGroup], results: list[queries.ValidationResult]
) -> list[RuleHold]:
    """Rows held in quarantine per rule (a row failing two rules counts under both), most first."""
    info = {}
    for r in results:
        info.setdefault(r.rule, r)
    merged: dict[str, RuleHold] = {}
    for g in groups:
        known = info.get(g.rule)
        hold = merged.setdefault(
            g.rule,
            RuleHold(
                g.rule,
                known.severity if known else "row",
                [],
                0,
                0,
                (known.description or "") if known else "",
            ),
        )
        hold.feeds.append(g.feed)
        hold.batches += len(g.batch_ids)
        hold.rows += g.rows
    return sorted(merged.values(), key=lambda h: (-h.rows, h.rule))


def _band_basis(description: str | None) -> str:
    """The bounds a ``row_count_in_band`` run used: the parenthesis its description ends with."""
    found = re.search(r"\(([^()]*)\)$", description or "")
    return found.group(1) if found else ""


def volume_flags(batches: list[queries.Batch], results: list[queries.ValidationResult]) -> list[VolumeFlag]:
    """Batches of feeds expected daily that their row-count band failed, or that came empty (with what the
    band said of them: a quiet day of a small feed is within it, a feed without history is not judged)."""
    band = {r.batch_id: r for r in results if r.rule == ROW_COUNT_RULE}
    flags = []
    for b in batches:
        try:
            daily = expected_daily(get_feed(b.feed))
        except KeyError:
            daily = False
        verdict = band.get(b.batch_id)
        basis = _band_basis(verdict.description) if verdict else ""
        if b.failed_rule == ROW_COUNT_RULE:
            problem = f"{b.rows_extracted:,} rows, outside its band ({basis}): failed, nothing loaded"
        elif daily and b.rows_extracted == 0:
            if verdict is None:
                problem = "empty: the feed sends rows every day and sent none"
            elif verdict.skipped:
                problem = f"empty; its volume is not judged yet ({verdict.skipped})"
            else:
                problem = f"empty, within its band ({basis}): a quiet day is plausible at this volume"
        else:
            continue
        day = b.day.isoformat() if b.day else None
        flags.append(VolumeFlag(b.feed, day, b.batch_id, b.status, b.rows_extracted, problem))
    return flags


def explain_validation(
    v: Validation, feeds: list[FeedRows], holds: list[RuleHold], flags: list[VolumeFlag]
) -> list[str]:
    """The pass rate in words: what the failed expectation runs did, so 66 % does not read as a failure."""
    if v.pass_rate is None:
        return []
    failed = {name: e["evaluated"] - e["passed"] for name, e in v.by_severity.items()}
    extracted = sum(f.rows_extracted for f in feeds)
    held = sum(f.rows_quarantined for f in feeds)
    batches = sum(f.batches for f in feeds)
    failed_batches = sum(f.failed_batches for f in feeds)
    share = f" ({held / extracted:.2%})" if extracted else ""
    most = ", most by " + ", ".join(f"{h.rule} ({h.rows:,})" for h in holds[:3]) if holds else ""
    lines = [
        f"The pass rate counts defects caught, not pipeline failures: {v.pass_rate:.1%} of the expectation runs "
        "found nothing, and each of the others caught something in what the sources sent and did what its "
        "severity says:",
        f"  row rules: {failed.get('row', 0):,} runs failed and held their rows in quarantine: "
        f"{held:,} of {extracted:,} rows extracted{share}{most}; the rest of each batch loaded",
        f"  whole batches: {failed_batches} of {batches} failed and loaded nothing (critical rules failed "
        f"{failed.get('critical', 0):,} runs; a schema change or an unreadable source fails a batch too): "
        "audit.batches.error says why",
        f"  warnings: {failed.get('warn', 0):,} runs flagged something and loaded everything",
    ]
    if flags:
        failing = sum(f.status == "failed" for f in flags)
        lines.append(
            f"  volume: {len(flags)} batch(es) of feeds expected daily came empty or outside their band "
            f"({failing} failed)"
        )
    lines.append(
        "What needs a person: the failed batches and volume flags above, and the held rows "
        "(edw quarantine list; after a fix, edw quarantine replay FEED)."
    )
    return lines


def channel_response(
    incidents: list[dict], intervals: list[str], targets: list[queries.Target]
) -> list[ChannelResponse]:
    target = {(t.channel, t.interval): t.seconds for t in targets}
    channels = sorted({t.channel for t in targets} | {i["channel"] for i in incidents})
    out = []
    for channel in channels:
        rows = [i for i in incidents if i["channel"] == channel]
        figures = [
            interval_figure([r[name] for r in rows if r[name] is not None], name, target.get((channel, name)))
            for name in intervals
        ]
        out.append(ChannelResponse(channel, len(rows), figures))
    return out


def collect_run_summary(
    warehouse_url: str,
    days: list[dt.date] | None = None,
    outputs: dict[str, str] | None = None,
    report_settings: ReportSettings | None = None,
) -> RunSummary:
    """Read the summary of ``days`` (default: the latest day in audit.batches) from the warehouse."""
    report_settings = report_settings or load_report_settings()
    warehouse = connect(warehouse_url)
    try:
        return _collect(warehouse, warehouse_url, days, outputs or {}, report_settings)
    finally:
        warehouse.close()


def _collect(
    warehouse: Warehouse,
    url: str,
    days: list[dt.date] | None,
    outputs: dict[str, str],
    report_settings: ReportSettings,
) -> RunSummary:
    problems: list[str] = []
    summary = RunSummary(
        days=[],
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        warehouse=display_url(url),
        feeds=[],
        validation=None,
        risk_date=None,
        risk_level_counts={},
        top_enterprises=[],
        response_days=[],
        response=[],
        outputs=outputs,
        problems=problems,
    )
    try:
        if days is None:
            latest = queries.latest_batch_day(warehouse)
            days = [latest] if latest else []
        summary.days = [d.isoformat() for d in days]
        batches = queries.batches(warehouse, days)
        summary.feeds = feed_rows(batches)
        batch_ids = {b.batch_id for b in batches}
        results = queries.validation_results(warehouse, batch_ids)
        summary.validation = validation(results)
        summary.held_by_rule = holds_by_rule(queries.quarantine_by_rule(warehouse, batch_ids), results)
        summary.volume_flags = volume_flags(batches, results)
        summary.failed_reruns = queries.failed_reruns(warehouse, days)
        summary.validation_explained = explain_validation(
            summary.validation, summary.feeds, summary.held_by_rule, summary.volume_flags
        )
    except queries.MissingTable as exc:
        problems.append(f"rows per feed and validation: {exc}")
    try:
        levels = queries.risk_levels(warehouse)
        risk_date, risks = queries.latest_risk(warehouse)
        counts = Counter(r.risk_level for r in risks)
        summary.risk_date = risk_date.isoformat() if risk_date else None
        summary.risk_level_counts = {level.name: counts.get(level.name, 0) for level in levels}
        summary.red_by_major_hazard = sum(r.level_reason == "open_major_hazard" for r in risks)
        top_n = int(report_settings.summary["top_enterprises"])
        summary.top_enterprises = [
            TopEnterprise(
                k, r.enterprise_id, r.enterprise_name, r.town_name, r.risk_index, r.risk_level, r.top_factors
            )
            for k, r in enumerate(risks[:top_n], start=1)
        ]
    except queries.MissingTable as exc:
        problems.append(f"enterprise risk: {exc}")
    try:
        intervals = queries.response_intervals(warehouse)
        rows = queries.incidents(warehouse, intervals, days)
        summary.response_days = sorted({r["received_date"].isoformat() for r in rows})
        summary.response = channel_response(rows, intervals, queries.response_targets(warehouse))
    except queries.MissingTable as exc:
        problems.append(f"response times: {exc}")
    return summary


def write_summary_json(summary: RunSummary, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path
