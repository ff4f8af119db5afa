"""The run summary: what a run left in the warehouse, read back from it (``edw run`` prints it and writes
it as ``$EDW_DATA_DIR/run_summary.json``).

Rows per feed (extracted, loaded, quarantined, rejected) from ``audit.batches``; the validation pass rate
from ``audit.validation_results``; the top enterprises by risk on the latest risk_date; response-time
p50/p90 per channel and interval against the seed response_targets; and where each output is.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..catalog import department, get_feed
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
        summary.validation = validation(queries.validation_results(warehouse, {b.batch_id for b in batches}))
    except queries.MissingTable as exc:
        problems.append(f"rows per feed and validation: {exc}")
    try:
        levels = queries.risk_levels(warehouse)
        risk_date, risks = queries.latest_risk(warehouse)
        counts = Counter(r.risk_level for r in risks)
        summary.risk_date = risk_date.isoformat() if risk_date else None
        summary.risk_level_counts = {level.name: counts.get(level.name, 0) for level in levels}
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
