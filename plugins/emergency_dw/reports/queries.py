"""What the reports read from the warehouse: audit tables, marts and reference seeds, on DuckDB or Postgres.

Every function takes an open :class:`~emergency_dw.warehouse.Warehouse` and returns plain Python rows
(numbers cast in SQL, since Postgres' NUMERIC arrives as text). Only ``audit``, ``quarantine`` (rule names,
never the held records), ``marts``, ``reference`` and PII-free ``staging`` columns are read: no page or
summary can show a person's name, phone or ID number.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

from ..catalog import all_feeds
from ..config import LOCAL_TZ
from ..warehouse import Warehouse, quote_ident

NUMBER = "double precision"


class MissingTable(LookupError):
    """A table a report needs is not in the warehouse (yet)."""


def table_exists(warehouse: Warehouse, schema: str, table: str) -> bool:
    rows = warehouse.query(
        "select cast(count(*) as bigint) as n from information_schema.tables "
        "where table_schema = ? and table_name = ?",
        [schema, table],
    ).to_pylist()
    return rows[0]["n"] > 0


def require(warehouse: Warehouse, schema: str, table: str, made_by: str) -> None:
    if not table_exists(warehouse, schema, table):
        raise MissingTable(f"{schema}.{table} is not in the warehouse: {made_by}")


BUILD_HINT = "run `edw build` (the dbt build) first"
INGEST_HINT = "ingest a day first (`edw ingest --all --date D` or `edw run`)"


# ---------------------------------------------------------------- audit
@dataclass
class Batch:
    batch_id: str
    feed: str
    day: dt.date | None  # the local day of the batch's interval
    status: str
    rows_extracted: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int
    failed_rule: str | None
    error: str | None
    checksum: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def reconciles(self) -> bool:
        return self.rows_extracted == self.rows_loaded + self.rows_quarantined + self.rows_rejected

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def batches(warehouse: Warehouse, days: list[dt.date] | None = None) -> list[Batch]:
    """Batches of ``audit.batches`` (those of ``days`` when given), by day then catalog order."""
    require(warehouse, "audit", "batches", INGEST_HINT)
    rows = warehouse.query(
        "select batch_id, feed, interval_start, status, cast(rows_extracted as bigint) as rows_extracted, "
        "cast(rows_loaded as bigint) as rows_loaded, cast(rows_quarantined as bigint) as rows_quarantined, "
        "cast(rows_rejected as bigint) as rows_rejected, failed_rule, error, checksum, started_at, finished_at "
        "from audit.batches"
    ).to_pylist()
    out = []
    for row in rows:
        start = row.pop("interval_start")
        day = start.astimezone(LOCAL_TZ).date() if start is not None else None
        if days is not None and day not in days:
            continue
        out.append(Batch(day=day, **row))
    order = {feed.name: k for k, feed in enumerate(all_feeds())}
    out.sort(key=lambda b: (b.day or dt.date.min, order.get(b.feed, len(order)), b.feed, b.batch_id))
    return out


@dataclass
class FailedRerun:
    """A failed attempt at a batch whose earlier good load stays current (``audit.batch_attempts``)."""

    batch_id: str
    feed: str
    day: dt.date | None
    failed_rule: str | None
    error: str | None
    attempted_at: dt.datetime | None
    landed_path: str | None
    good_loaded_at: dt.datetime | None  # the good load that stays
    good_rows_loaded: int


def failed_reruns(warehouse: Warehouse, days: list[dt.date] | None = None) -> list[FailedRerun]:
    """Failed attempts made after a batch's current good load (the good load stayed: the audit row of
    ``audit.batches`` is the good one, the failure is beside it in ``audit.batch_attempts``), newest first."""
    require(warehouse, "audit", "batches", INGEST_HINT)
    if not table_exists(warehouse, "audit", "batch_attempts"):
        return []
    rows = warehouse.query(
        "select a.batch_id, a.feed, a.interval_start, a.failed_rule, a.error, a.finished_at as attempted_at, "
        "a.landed_path, b.finished_at as good_loaded_at, cast(b.rows_loaded as bigint) as good_rows_loaded "
        "from audit.batch_attempts a join audit.batches b on b.batch_id = a.batch_id "
        "where a.status = 'failed' and b.status = 'loaded' and a.finished_at > b.finished_at "
        "order by a.finished_at desc"
    ).to_pylist()
    out = []
    for row in rows:
        start = row.pop("interval_start")
        day = start.astimezone(LOCAL_TZ).date() if start is not None else None
        if days is None or day in days:
            out.append(FailedRerun(day=day, **row))
    return out


@dataclass
class Build:
    via: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str
    batches_seen: int
    nodes: int
    failed_nodes: int

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def builds(warehouse: Warehouse, limit: int) -> list[Build]:
    """The latest ``limit`` production builds of ``audit.builds``, newest first (none before the first)."""
    if not table_exists(warehouse, "audit", "builds"):
        return []
    rows = warehouse.query(
        "select via, started_at, finished_at, status, cast(batches_seen as bigint) as batches_seen, "
        "cast(nodes as bigint) as nodes, cast(failed_nodes as bigint) as failed_nodes "
        f"from audit.builds order by started_at desc limit {int(limit)}"
    ).to_pylist()
    return [Build(**row) for row in rows]


def latest_batch_day(warehouse: Warehouse) -> dt.date | None:
    days = [b.day for b in batches(warehouse) if b.day is not None]
    return max(days) if days else None


@dataclass
class ValidationResult:
    batch_id: str
    feed: str
    rule: str
    expectation: str
    column_name: str | None
    severity: str
    success: bool
    unexpected_count: int
    skipped: str | None
    description: str | None
    validated_at: dt.datetime


def validation_results(warehouse: Warehouse, batch_ids: set[str] | None = None) -> list[ValidationResult]:
    """One row per expectation per validation run (batch), oldest run first."""
    require(warehouse, "audit", "validation_results", INGEST_HINT)
    rows = warehouse.query(
        "select batch_id, feed, rule, expectation, column_name, severity, success, "
        "cast(unexpected_count as bigint) as unexpected_count, skipped, description, validated_at "
        "from audit.validation_results order by validated_at, feed, rule"
    ).to_pylist()
    return [ValidationResult(**r) for r in rows if batch_ids is None or r["batch_id"] in batch_ids]


@dataclass
class QuarantineGroup:
    feed: str
    rule: str
    rows: int
    batch_ids: set[str] = field(default_factory=set)


def quarantine_by_rule(warehouse: Warehouse, batch_ids: set[str] | None = None) -> list[QuarantineGroup]:
    """Rows held in ``quarantine.<feed>`` by feed and failed rule (a row failing two rules counts in both).

    Only the rule names are read, never the held record (it may carry personal data)."""
    groups: dict[tuple[str, str], QuarantineGroup] = {}
    for feed in all_feeds():
        if not table_exists(warehouse, "quarantine", feed.name):
            continue
        rows = warehouse.query(
            f"select _batch_id, _failed_rules from quarantine.{quote_ident(feed.name)}"
        ).to_pylist()
        for row in rows:
            if batch_ids is not None and row["_batch_id"] not in batch_ids:
                continue
            rules = row["_failed_rules"]
            for rule in json.loads(rules) if isinstance(rules, str) else rules:
                group = groups.setdefault((feed.name, rule), QuarantineGroup(feed.name, rule, 0))
                group.rows += 1
                group.batch_ids.add(row["_batch_id"])
    return sorted(groups.values(), key=lambda g: (-g.rows, g.feed, g.rule))


# ---------------------------------------------------------------- risk
@dataclass(frozen=True)
class RiskLevel:
    name: str
    rank: int  # 1 = most severe
    name_zh: str
    min_index: float
    max_index: float
    description: str = ""  # what an enterprise of the level looks like (the seed's examples)


def risk_levels(warehouse: Warehouse) -> list[RiskLevel]:
    """The four-colour levels of the seed risk_level_thresholds, most severe first."""
    require(warehouse, "reference", "risk_level_thresholds", BUILD_HINT)
    rows = warehouse.query(
        f"select risk_level, cast(level_rank as integer) as level_rank, colour_zh, "
        f"cast(min_index as {NUMBER}) as min_index, cast(max_index as {NUMBER}) as max_index, description "
        "from reference.risk_level_thresholds order by level_rank"
    ).to_pylist()
    return [
        RiskLevel(
            r["risk_level"], r["level_rank"], r["colour_zh"], r["min_index"], r["max_index"], r["description"]
        )
        for r in rows
    ]


@dataclass
class EnterpriseRisk:
    enterprise_id: str
    risk_date: dt.date
    risk_index: float
    risk_level: str
    top_factors: str
    level_reason: str  # risk_index, or open_major_hazard (red whatever the index)
    enterprise_name: str | None
    town_code: str | None
    town_name: str | None


def latest_risk(warehouse: Warehouse) -> tuple[dt.date | None, list[EnterpriseRisk]]:
    """Every enterprise's risk on the latest risk_date of marts.fct_enterprise_risk_daily, most severe
    level first (seed level_rank), then by risk index."""
    require(warehouse, "marts", "fct_enterprise_risk_daily", BUILD_HINT)
    has_dim = table_exists(warehouse, "marts", "dim_enterprise")
    names = (
        "e.enterprise_name, e.town_code, e.town_name"
        if has_dim
        else "cast(null as varchar) as enterprise_name, cast(null as varchar) as town_code, "
        "cast(null as varchar) as town_name"
    )
    join = "left join marts.dim_enterprise as e on r.enterprise_id = e.enterprise_id" if has_dim else ""
    rows = warehouse.query(
        f"select r.enterprise_id, r.risk_date, cast(r.risk_index as {NUMBER}) as risk_index, r.risk_level, "
        f"r.top_factors, r.level_reason, {names} "
        f"from marts.fct_enterprise_risk_daily as r {join} "
        "left join reference.risk_level_thresholds as t on r.risk_level = t.risk_level "
        "where r.risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily) "
        "order by t.level_rank, r.risk_index desc, r.enterprise_id"
    ).to_pylist()
    if not rows:
        return None, []
    return rows[0]["risk_date"], [EnterpriseRisk(**r) for r in rows]


# ---------------------------------------------------------------- response
@dataclass(frozen=True)
class Target:
    channel: str
    interval: str
    seconds: float
    basis: str | None


def response_intervals(warehouse: Warehouse) -> list[str]:
    """The intervals of the seed response_targets, in the order of their columns in fct_incident_response."""
    require(warehouse, "marts", "fct_incident_response", BUILD_HINT)
    names = {t.interval for t in response_targets(warehouse)}
    columns = warehouse.query(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'fct_incident_response' order by ordinal_position"
    ).column("column_name")
    ordered = [c.as_py().removesuffix("_seconds") for c in columns if c.as_py().endswith("_seconds")]
    missing = names - set(ordered)
    if missing:
        raise ValueError(
            f"the seed response_targets names intervals {sorted(missing)} that marts.fct_incident_response "
            "has no <interval>_seconds column for; fix the seed or the mart"
        )
    return [name for name in ordered if name in names]


def response_targets(warehouse: Warehouse) -> list[Target]:
    require(warehouse, "reference", "response_targets", BUILD_HINT)
    rows = warehouse.query(
        f"select cast(channel as varchar) as channel, interval_name, cast(target_seconds as {NUMBER}) as s, "
        "basis from reference.response_targets order by channel, interval_name"
    ).to_pylist()
    return [Target(r["channel"], r["interval_name"], r["s"], r["basis"]) for r in rows]


def incidents(warehouse: Warehouse, intervals: list[str], days: list[dt.date] | None) -> list[dict]:
    """Incidents of marts.fct_incident_response (received on ``days``, else on its latest day)."""
    require(warehouse, "marts", "fct_incident_response", BUILD_HINT)
    columns = "".join(
        f", cast({quote_ident(i + '_seconds')} as {NUMBER}) as {quote_ident(i)}" for i in intervals
    )
    sql = f"select incident_id, channel, town_code, received_date{columns} from marts.fct_incident_response"
    if days:
        return warehouse.query(
            sql + " where received_date >= cast(? as date) and received_date <= cast(? as date)",
            [min(days).isoformat(), max(days).isoformat()],
        ).to_pylist()
    return warehouse.query(
        sql + " where received_date = (select max(received_date) from marts.fct_incident_response)"
    ).to_pylist()


# ---------------------------------------------------------------- map
@dataclass(frozen=True)
class Town:
    town_code: str
    name: str
    name_zh: str
    kind: str
    lat: float
    lon: float


def towns(warehouse: Warehouse) -> list[Town]:
    require(warehouse, "reference", "towns", BUILD_HINT)
    rows = warehouse.query(
        f"select cast(town_code as varchar) as town_code, town_name, town_name_zh, town_kind, "
        f"cast(lat as {NUMBER}) as lat, cast(lon as {NUMBER}) as lon from reference.towns order by town_code"
    ).to_pylist()
    return [
        Town(r["town_code"], r["town_name"], r["town_name_zh"], r["town_kind"], r["lat"], r["lon"])
        for r in rows
    ]


@dataclass(frozen=True)
class Shelter:
    shelter_id: str
    name: str
    town_code: str
    lat: float | None
    lon: float | None
    capacity: int
    is_open: bool | None


def shelters(warehouse: Warehouse) -> list[Shelter]:
    """The shelters' latest snapshot (Civil Affairs; staging holds no personal data for them)."""
    require(warehouse, "staging", "stg_mzj__shelters", BUILD_HINT)
    rows = warehouse.query(
        f"select shelter_id, name, town_code, cast(lat as {NUMBER}) as lat, cast(lon as {NUMBER}) as lon, "
        "cast(capacity as bigint) as capacity, is_open from staging.stg_mzj__shelters order by shelter_id"
    ).to_pylist()
    return [Shelter(**r) for r in rows]


def open_incident_reports(warehouse: Warehouse, statuses: list[str]) -> tuple[dt.date | None, Counter]:
    """Town incident reports of the latest reported day still open (status among ``statuses``), per town."""
    require(warehouse, "staging", "stg_towns__town_incident_reports", BUILD_HINT)
    rows = warehouse.query(
        "select town_code, reported_date, status from staging.stg_towns__town_incident_reports "
        "where reported_date = (select max(reported_date) from staging.stg_towns__town_incident_reports)"
    ).to_pylist()
    if not rows:
        return None, Counter()
    return rows[0]["reported_date"], Counter(r["town_code"] for r in rows if r["status"] in statuses)


# ---------------------------------------------------------------- power monitoring
@dataclass
class PowerIssue:
    issue: str
    episodes: int
    meters: int
    readings: int
    latest: dt.date | None


@dataclass
class PowerIssueEpisode:
    meter_id: str
    enterprise_id: str
    issue: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    readings: int
    detail: str


def power_warnings_by_rule(warehouse: Warehouse) -> list[dict]:
    """Warnings of ``marts.fct_power_anomalies`` per rule: how many, how many enterprises, the latest."""
    require(warehouse, "marts", "fct_power_anomalies", BUILD_HINT)
    return warehouse.query(
        "select rule, cast(count(*) as bigint) as warnings, cast(count(distinct enterprise_id) as bigint) "
        "as enterprises, max(started_at) as latest from marts.fct_power_anomalies group by rule order by rule"
    ).to_pylist()


def power_issues(warehouse: Warehouse) -> list[PowerIssue]:
    """Data-quality episodes of the meters (``marts.fct_power_data_quality``) per issue."""
    require(warehouse, "marts", "fct_power_data_quality", BUILD_HINT)
    rows = warehouse.query(
        "select issue, cast(count(*) as bigint) as episodes, cast(count(distinct meter_id) as bigint) as meters, "
        "cast(coalesce(sum(readings), 0) as bigint) as readings, max(issue_date) as latest "
        "from marts.fct_power_data_quality group by issue order by issue"
    ).to_pylist()
    return [PowerIssue(**r) for r in rows]


def power_issue_episodes(warehouse: Warehouse, issues: list[str], limit: int) -> list[PowerIssueEpisode]:
    """The latest ``limit`` episodes of these issues, newest first."""
    require(warehouse, "marts", "fct_power_data_quality", BUILD_HINT)
    if not issues:
        return []
    marks = ", ".join("?" for _ in issues)
    rows = warehouse.query(
        "select meter_id, enterprise_id, issue, started_at, ended_at, cast(readings as bigint) as readings, detail "
        f"from marts.fct_power_data_quality where issue in ({marks}) "
        f"order by started_at desc, meter_id limit {int(limit)}",
        issues,
    ).to_pylist()
    return [PowerIssueEpisode(**r) for r in rows]
