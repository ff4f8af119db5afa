"""One batch of one feed: extract -> land -> validate -> quarantine -> load -> audit.

Two steps, so an Airflow DAG can run them as two tasks that pass only a small dict through XCom:
``extract_and_land`` (source to the raw lake) and ``validate_and_load`` (lake to warehouse). A batch
is identified by its feed and interval, so a rerun replaces exactly what the previous run wrote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Feed, FileDrop, get_feed
from ..config import LOCAL_TZ, claim_data_directory, settings
from ..pii import hash_value, pii_salt
from ..warehouse import ColumnSpec, connect
from . import suites
from .parse import Parsed, SchemaError, parse_batch, storable_json
from .tables import (
    AUDIT,
    BATCH_ATTEMPTS,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    RAW,
    VALIDATION_RESULTS,
    ensure_batch_partition,
    ensure_pipeline_tables,
    raw_columns,
)
from .validate import RuleOutcome, run_suite
from .volume import row_count_band

log = logging.getLogger(__name__)

ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


class BatchFailed(RuntimeError):
    """A batch failed as a whole (a critical rule, a schema change, an unreadable source)."""

    def __init__(self, feed: str, batch_id: str, rule: str, message: str) -> None:
        self.feed, self.batch_id, self.rule = feed, batch_id, rule
        super().__init__(f"feed {feed}, batch {batch_id}, rule {rule}: {message}")


@dataclass
class LandedBatch:
    feed: str
    batch_id: str
    path: str
    rows: int
    source: str
    interval_start: str | None
    interval_end: str | None
    files: list[str] = field(default_factory=list)
    extract_seconds: float = 0.0
    started_at: str = ""
    covers: str = ""  # a file sent on its own: the days it covers and how they were found

    def to_xcom(self) -> dict:
        return asdict(self)


@dataclass
class BatchResult:
    feed: str
    batch_id: str
    status: str
    rows_extracted: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int
    failed_rule: str | None = None
    error: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    outcomes: list[RuleOutcome] = field(default_factory=list, repr=False)


# ---------------------------------------------------------------- batch identity and the lake
def day_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day (Asia/Shanghai) as a UTC interval."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def batch_id_for(feed: Feed, start: dt.datetime, end: dt.datetime) -> str:
    local_start, local_end = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
    if local_start.time() == dt.time() and local_end - local_start == dt.timedelta(days=1):
        return f"{feed.name}:{local_start.date().isoformat()}"
    return f"{feed.name}:{local_start:%Y%m%dT%H%M}-{local_end:%Y%m%dT%H%M}"


def lake_path(feed: Feed, batch_id: str, day: dt.date) -> Path:
    """Where an attempt at a batch lands: its own file, named by the batch and the moment it landed
    (``<feed>__<day>__<UTC time>.parquet``), so that no attempt overwrites another's: the lake is
    append-only, and the audit row names the exact file with its checksum."""
    claim_data_directory()
    landed_at = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{batch_id.replace(':', '__')}__{landed_at}.parquet"
    return settings().lake_dir / "raw" / feed.name / f"dt={day.isoformat()}" / name


def _write_atomic(path: Path, table: pa.Table) -> None:
    """Write ``path`` whole or not at all, never over an existing file (the lake is append-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    try:
        os.link(tmp, path)  # fails if the file exists: an attempt never replaces another
    finally:
        tmp.unlink(missing_ok=True)


def _stringify_nested(table: pa.Table) -> pa.Table:
    """Parquet cannot hold a column of nulls only or mixed objects well: keep such columns as text."""
    columns = []
    for name in table.column_names:
        column = table[name]
        if pa.types.is_null(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


# ---------------------------------------------------------------- step 1: extract and land
def extract_and_land(feed_name: str, start: dt.datetime, end: dt.datetime) -> LandedBatch:
    from ..connectors import extract
    from ..connectors.base import SourceError

    feed = get_feed(feed_name)
    batch_id = batch_id_for(feed, start, end)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).isoformat()
    try:
        # A snapshot served by an API or a database is taken whole as of the interval's end; events, and
        # the files of the interval's days, by interval.
        whole = feed.snapshot and feed.connector_kind != "file_drop"
        extracted = extract(feed, None if whole else start, end)
    except SourceError as exc:
        raise BatchFailed(feed.name, batch_id, "source_readable", str(exc)) from exc
    path = lake_path(feed, batch_id, start.astimezone(LOCAL_TZ).date())
    _write_atomic(path, _stringify_nested(extracted.table))
    source = extracted.source
    if feed.connector_kind == "http_json":  # the connection, not a host and port that may move
        source = f"{feed.connector.conn_id}:{feed.connector.endpoint}"  # type: ignore[union-attr]
    return LandedBatch(
        feed=feed.name,
        batch_id=batch_id,
        path=str(path),
        rows=extracted.rows,
        source=source,
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        files=[str(p) for p in extracted.files],
        extract_seconds=time.perf_counter() - started,
        started_at=started_at,
    )


def land_file(
    feed_name: str,
    path: Path,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    today: dt.date | None = None,
) -> LandedBatch:
    """A department's exported file, landed as a batch of its own (``edw ingest FEED --file PATH``).

    The batch's interval is the days the file covers (``first_day``..``last_day`` when given, else the
    days of its records' event time: see ``file_interval.py``), so its ``window`` rules judge a historic
    export by its own days, not by today. The file lands whole, once, under its first day
    (``lake/raw/<feed>/dt=<first day>/``): one file, one batch, one checksum, one replay.

    Raises ``BatchFailed`` (rule ``source_readable``) when the file cannot be read as what it claims."""
    from ..connectors.base import SourceError
    from ..connectors.file_drop import read_file
    from .file_interval import file_days

    feed = get_feed(feed_name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    formats = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: unsupported file type {path.suffix!r}; send csv, xlsx or parquet")
    reader_feed = feed
    if not isinstance(feed.connector, FileDrop) or feed.connector.format != fmt:
        sheet = feed.connector.sheet if isinstance(feed.connector, FileDrop) else None
        reader_feed = replace(
            feed, connector=FileDrop(folder=feed.name, format=fmt, pattern="*", sheet=sheet)
        )
    started = time.perf_counter()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    batch_id = f"{feed.name}:file:{digest}"
    try:
        table = read_file(reader_feed, path)
    except SourceError as exc:
        raise BatchFailed(feed.name, batch_id, "source_readable", str(exc)) from exc
    days = file_days(feed, table, path, first_day, last_day, today)
    start, end = days.interval
    landed = lake_path(feed, batch_id, days.first)
    _write_atomic(landed, _stringify_nested(table))
    return LandedBatch(
        feed=feed.name,
        batch_id=batch_id,
        path=str(landed),
        rows=table.num_rows,
        source=str(path),
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        extract_seconds=time.perf_counter() - started,
        started_at=dt.datetime.now(dt.UTC).isoformat(),
        covers=days.describe(),
    )


# ---------------------------------------------------------------- step 2: validate and load
def _column_array(frame: pd.DataFrame, spec: ColumnSpec) -> pa.Array:
    values = frame[spec.name] if spec.name in frame.columns else pd.Series([None] * len(frame))
    if spec.type == "date":
        values = values.astype(object).where(values.notna(), None)
    return pa.array(values, type=ARROW_TYPES[spec.type], from_pandas=True)


def arrow_table(frame: pd.DataFrame, columns: list[ColumnSpec]) -> pa.Table:
    """``frame`` as an Arrow table of ``columns``, typed as the pipeline loads them."""
    return pa.table([_column_array(frame, spec) for spec in columns], names=[c.name for c in columns])


def _raw_arrow(frame: pd.DataFrame, feed: Feed, keep: np.ndarray, lineage: dict) -> pa.Table:
    """The rows of the parsed batch that ``keep`` marks, as ``raw.<feed>``'s Arrow table, with the lineage
    columns (``lineage``: name -> the batch's value). Built column by column from the frame, the kept rows
    picked in Arrow, so a day of power readings is never copied whole in pandas first."""
    rows = int(keep.sum())
    mask = None if rows == len(frame) else pa.array(keep)
    arrays = []
    for spec in raw_columns(feed):
        if spec.name in lineage:
            arrays.append(pa.repeat(pa.scalar(lineage[spec.name], type=ARROW_TYPES[spec.type]), rows))
            continue
        array = _column_array(frame, spec)
        arrays.append(array if mask is None else array.filter(mask))
    return pa.table(arrays, names=[c.name for c in raw_columns(feed)])


def batch_window(landed: LandedBatch) -> tuple[dt.datetime, dt.datetime]:
    """The interval a batch's ``window`` rules are measured from: the batch's own (a file sent on its own
    has the days it covers); for a file batch landed before intervals were kept, the local day of the
    date stamp in its name, else the local day it was loaded."""
    if landed.interval_start and landed.interval_end:
        start = pd.Timestamp(landed.interval_start).to_pydatetime()
        return start, pd.Timestamp(landed.interval_end).to_pydatetime()
    from ..connectors.file_drop import file_date

    day = file_date(Path(landed.source)) if landed.source else None
    if day is None:
        loaded = pd.Timestamp(landed.started_at) if landed.started_at else pd.Timestamp.now(tz="UTC")
        loaded = loaded.tz_localize("UTC") if loaded.tzinfo is None else loaded
        day = loaded.tz_convert(LOCAL_TZ).date()
    return day_interval(day)


def _window(rule: dict, window: dict, interval: tuple[dt.datetime, dt.datetime] | None) -> None:
    """``{"window": {"column", "days_before", "days_after"}}``: the column's values lie within the batch's
    interval widened by those days (either bound may be left out)."""
    column = window["column"]
    rule["kwargs"].setdefault("column", column)
    if interval is None:
        rule["skipped"] = "the batch has no interval to measure the window from"
        return
    start, end = interval
    bounds = []
    if window.get("days_before") is not None:
        low = start - dt.timedelta(days=float(window["days_before"]))
        rule["kwargs"]["min_value"] = low
        bounds.append(f"from {low.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}")
    if window.get("days_after") is not None:
        high = end + dt.timedelta(days=float(window["days_after"]))
        rule["kwargs"]["max_value"] = high
        bounds.append(f"until {high.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}")
    rule["description"] = f"{rule.get('description', '')} ({column} {' '.join(bounds)} local time)".strip()


def resolve_rules(
    warehouse,
    feed: Feed,
    batch_id: str,
    frame: pd.DataFrame,
    interval: tuple[dt.datetime, dt.datetime] | None = None,
) -> list[dict]:
    """Fill in hand-written rules' run-time parts: reference sets, row-count bands, time windows."""
    resolved = []
    for original in suites.all_rules(suites.load_suite(feed)):
        r = json.loads(json.dumps(original))
        ref = r.pop("reference", None)
        history = r.pop("history", None)
        window = r.pop("window", None)
        if window:
            _window(r, window, interval)
        if ref:
            schema, table = ref["table"].split(".")
            try:
                values = warehouse.query(
                    f'select distinct "{ref["column"]}" as v from "{schema}"."{table}" where "{ref["column"]}" is not null'
                )
                value_set = [v for v in values.column("v").to_pylist() if v is not None]
            except Exception:  # noqa: BLE001 - a missing reference table is reported, not fatal
                value_set = []
            if value_set:
                # Checked by membership in pandas, not as a GX value_set: GX copies a value_set of
                # thousands of ids through pydantic many times per run (2-3 s a batch).
                r["membership"] = {"column": r["kwargs"]["column"], "values": value_set}
            else:
                r["skipped"] = f"reference {ref['table']}.{ref['column']} has no rows yet"
        if history:
            band = row_count_band(warehouse, feed, batch_id, history, interval)
            if band.skipped:
                r["skipped"] = band.skipped
            else:
                for key in ("min_value", "max_value"):
                    if getattr(band, key) is not None:
                        r["kwargs"][key] = getattr(band, key)
                r["description"] = f"{r.get('description', '')} {band.basis}".strip()
        resolved.append(r)
    return resolved


def _hash_personal_values(feed: Feed, gx_result: dict) -> dict:
    """The result of every rule on a personal column with the values it quotes (the unexpected values, and
    the values beside each unexpected row's number) replaced by their salted hashes: the Data Docs never
    show a phone or ID number in clear."""
    personal = {c.name for c in feed.columns if c.pii}
    if not personal:
        return gx_result
    salt = None

    def hashed(value):
        nonlocal salt
        if value is None or isinstance(value, bool):
            return value
        salt = salt or pii_salt()
        return hash_value(value, salt)

    for item in gx_result.get("results") or []:
        kwargs = (item.get("expectation_config") or {}).get("kwargs") or {}
        columns = {
            kwargs.get("column"),
            kwargs.get("column_A"),
            kwargs.get("column_B"),
            *(kwargs.get("column_list") or []),
        }
        if not columns & personal or not item.get("result"):
            continue
        result = item["result"]
        for key in ("unexpected_list", "partial_unexpected_list"):
            if result.get(key):
                result[key] = [hashed(v) for v in result[key]]
        for entry in result.get("partial_unexpected_counts") or []:
            entry["value"] = hashed(entry.get("value"))
        for key in ("unexpected_index_list", "partial_unexpected_index_list"):
            for entry in result.get(key) or []:
                if isinstance(entry, dict):
                    for name in personal & entry.keys():
                        entry[name] = hashed(entry[name])
    return gx_result


def _keep_validation_result(feed: Feed, batch_id: str, gx_result: dict) -> Path:
    """The run's Great Expectations result, kept for the auditors' Data Docs (``data/validation/``), with
    personal values hashed."""
    gx_result = _hash_personal_values(feed, gx_result)
    path = settings().data_dir / "validation" / feed.name / (batch_id.replace(":", "__") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(gx_result, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def _records_json(landed: pa.Table, rows: np.ndarray, feed: Feed) -> list[str]:
    """The quarantined rows as delivered (keyed by the source's headers), their personal fields hashed."""
    picked = landed.take(pa.array(rows, type=pa.int64())).to_pylist()
    keys = _personal_keys(feed)
    if keys:
        salt = pii_salt()
        for record in picked:
            for key in keys & record.keys():
                if record[key] is not None and str(record[key]).strip():
                    record[key] = hash_value(record[key], salt)
    return [storable_json(rec) for rec in picked]


def _personal_keys(feed: Feed) -> set[str]:
    """The keys a delivered record of ``feed`` may carry personal data under (its header, or its name)."""
    return {c.header for c in feed.columns if c.pii} | {c.name for c in feed.columns if c.pii}


WATERMARK_UPSERT = f"""
insert into "{AUDIT}"."watermarks" (feed, high_watermark, batch_id, updated_at) values (?, ?, ?, ?)
on conflict (feed) do update set
    high_watermark = excluded.high_watermark, batch_id = excluded.batch_id, updated_at = excluded.updated_at
where "watermarks".high_watermark is null
    or "watermarks".high_watermark < excluded.high_watermark
    or ("watermarks".high_watermark = excluded.high_watermark and "watermarks".batch_id < excluded.batch_id)
"""


def _raise_watermark(tx, feed: str, high: dt.datetime, batch_id: str, now: pd.Timestamp) -> None:
    """Move the feed's high watermark up to ``high`` (never down), in the batch's transaction; on a tie
    the later batch id (the later day) is the one recorded, whichever loaded first.

    One statement, so two batches of the feed loading at once neither collide on the feed's row (a
    delete and insert would fail one of them on the primary key) nor let the lower mark win."""
    tx.execute(WATERMARK_UPSERT, [feed, high, batch_id, now.to_pydatetime()])


def validate_and_load(landed: LandedBatch | dict, warehouse_url: str | None = None) -> BatchResult:
    """Validate the landed batch and load it atomically; always writes the audit trail.

    The warehouse is held only while it is read (the rules' reference sets and history) and while the
    batch is loaded, not while the batch is parsed and validated: the embedded DuckDB file admits one
    process at a time, and this lets feeds loading side by side validate side by side.

    Raises ``BatchFailed`` (after auditing) when the batch fails as a whole."""
    if isinstance(landed, dict):
        landed = LandedBatch(**landed)
    return _validate_and_load(warehouse_url or settings().warehouse_url, get_feed(landed.feed), landed)


@contextlib.contextmanager
def _warehouse(url: str):
    warehouse = connect(url)
    try:
        yield warehouse
    finally:
        warehouse.close()


def _critical_message(outcome: RuleOutcome) -> str:
    """What failed the batch, in words: a row count is told as one (an empty delivery says it sent 0 rows)."""
    if outcome.expectation == "expect_table_row_count_to_be_between":
        rows = f"{outcome.observed:,}" if isinstance(outcome.observed, int) else str(outcome.observed)
        return (
            f"the batch holds {rows} rows, outside its band; {outcome.description}. "
            "Ask the department whether the export or the interface broke, then rerun the batch"
        )
    what = outcome.description or outcome.expectation
    return f"{what} failed ({outcome.unexpected_count} unexpected; observed {outcome.observed})"


def _validate_and_load(warehouse_url: str, feed: Feed, landed: LandedBatch) -> BatchResult:
    started = time.perf_counter()
    table = pq.read_table(landed.path)
    checksum = hashlib.sha256(Path(landed.path).read_bytes()).hexdigest()
    failure: tuple[str, str] | None = None
    parsed: Parsed | None = None
    outcomes: list[RuleOutcome] = []
    quarantined = np.array([], dtype="int64")
    try:
        parsed = parse_batch(feed, table)
    except SchemaError as exc:
        failure = ("columns_match_catalog", str(exc))
    with _warehouse(warehouse_url) as warehouse:
        ensure_pipeline_tables(warehouse, feed)
        if parsed is not None:
            rules = resolve_rules(warehouse, feed, landed.batch_id, parsed.frame, batch_window(landed))
    validate_seconds = 0.0
    if parsed is not None:
        outcomes, gx_result = run_suite(f"{feed.name}__{landed.batch_id}", parsed.frame, rules)
        _keep_validation_result(feed, landed.batch_id, gx_result)
        outcomes.append(
            RuleOutcome(
                "values_have_declared_types",
                "parse_values",
                None,
                "row",
                not parsed.type_errors,
                len(parsed.type_errors),
                np.array(sorted(parsed.type_errors), dtype="int64"),
                description="every value converts to its declared type",
            )
        )
        validate_seconds = time.perf_counter() - started
        critical = [o for o in outcomes if o.severity == "critical" and not o.success]
        if critical:
            failure = (critical[0].name, _critical_message(critical[0]))
        row_failures = [o for o in outcomes if o.severity == "row" and not o.success]
        if row_failures:
            quarantined = np.unique(np.concatenate([o.rows for o in row_failures]))
    load_started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC")
    rows_extracted = table.num_rows
    if failure is None:
        frame = parsed.frame
        failed_by_row: dict[int, list[str]] = {}
        for o in outcomes:
            if o.severity == "row" and not o.success:
                for row in o.rows:
                    failed_by_row.setdefault(int(row), []).append(o.name)
        q_rows = quarantined
        qframe = pd.DataFrame(
            {
                "_batch_id": landed.batch_id,
                "_row": q_rows,
                "_failed_rules": [json.dumps(failed_by_row.get(int(r), [])) for r in q_rows],
                "_errors": [
                    storable_json(parsed.type_errors[int(r)]) if int(r) in parsed.type_errors else None
                    for r in q_rows
                ],
                "_record": _records_json(table, q_rows, feed),
                "_quarantined_at": now,
                "_source": landed.source,
            }
        )
        quarantine_table = arrow_table(qframe, QUARANTINE_COLUMNS)
        del table, qframe  # the batch as delivered is in the lake; only its quarantined records were needed
        keep = ~frame["_row"].isin(quarantined).to_numpy(dtype=bool)
        lineage = {"_batch_id": landed.batch_id, "_loaded_at": now, "_source": landed.source}
        raw_table = _raw_arrow(frame, feed, keep, lineage)
        rows_loaded, rows_quarantined, rows_rejected, status = raw_table.num_rows, len(q_rows), 0, "loaded"
    else:
        raw_table = quarantine_table = None
        rows_loaded, rows_quarantined, rows_rejected, status = 0, 0, rows_extracted, "failed"
    audit_row = {
        "batch_id": landed.batch_id,
        "feed": feed.name,
        "interval_start": pd.Timestamp(landed.interval_start) if landed.interval_start else None,
        "interval_end": pd.Timestamp(landed.interval_end) if landed.interval_end else None,
        "status": status,
        "rows_extracted": rows_extracted,
        "rows_loaded": rows_loaded,
        "rows_quarantined": rows_quarantined,
        "rows_rejected": rows_rejected,
        "failed_rule": failure[0] if failure else None,
        "error": f"feed {feed.name}, batch {landed.batch_id}, rule {failure[0]}: {failure[1]}"
        if failure
        else None,
        "extra_columns": storable_json(parsed.extra_columns if parsed else []),
        "source": landed.source,
        "landed_path": landed.path,
        "checksum": checksum,
        "started_at": pd.Timestamp(landed.started_at) if landed.started_at else now,
        "finished_at": now,
        "extract_seconds": landed.extract_seconds,
        "validate_seconds": validate_seconds,
        "load_seconds": 0.0,
    }
    results = pd.DataFrame(
        [
            {
                "batch_id": landed.batch_id,
                "feed": feed.name,
                "rule": o.name,
                "expectation": o.expectation,
                "column_name": o.column,
                "severity": o.severity,
                "success": o.success,
                "unexpected_count": o.unexpected_count,
                "observed": storable_json(o.observed) if o.observed is not None else None,
                "skipped": o.skipped,
                "description": o.description,
                "validated_at": now,
            }
            for o in outcomes
        ]
        or [],
        columns=[c.name for c in VALIDATION_RESULTS],
    )
    good_load = None
    with _warehouse(warehouse_url) as warehouse:
        if raw_table is not None:
            # A partitioned raw table (Postgres, the big feeds): the batch's partition exists before its load
            # starts, created in a short transaction of its own (see PostgresWarehouse.ensure_partition).
            ensure_batch_partition(warehouse, feed, landed.batch_id)
        try:
            with warehouse.transaction() as tx:
                good_load = _write_attempt(
                    tx,
                    warehouse,
                    feed,
                    landed,
                    raw_table,
                    quarantine_table,
                    audit_row,
                    results,
                    now,
                    load_started,
                )
        except _LoadMismatch as exc:
            # the transaction rolled back: whatever an earlier attempt loaded is as it was
            failure = ("rows_reconcile", str(exc))
            status, rows_loaded, rows_quarantined, rows_rejected = "failed", 0, 0, rows_extracted
            audit_row.update(
                status=status,
                rows_loaded=0,
                rows_quarantined=0,
                rows_rejected=rows_extracted,
                failed_rule=failure[0],
                error=f"feed {feed.name}, batch {landed.batch_id}, rule {failure[0]}: {failure[1]}",
            )
            with warehouse.transaction() as tx:
                good_load = _write_attempt(
                    tx, warehouse, feed, landed, None, None, audit_row, results, now, load_started
                )
        else:
            rows_loaded, rows_quarantined = audit_row["rows_loaded"], audit_row["rows_quarantined"]
            _refresh_statistics(warehouse, feed, landed.batch_id)
    if failure is None and landed.files:
        from ..connectors.file_drop import mark_processed
        from ..connectors.settings import drop_root

        mark_processed([Path(p) for p in landed.files], drop_root(feed))
    result = BatchResult(
        feed=feed.name,
        batch_id=landed.batch_id,
        status=status,
        rows_extracted=rows_extracted,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        rows_rejected=rows_rejected,
        failed_rule=failure[0] if failure else None,
        error=audit_row["error"],
        extra_columns=list(parsed.extra_columns) if parsed else [],
        outcomes=outcomes,
    )
    if failure is not None:
        kept = (
            f" The good load of {good_load['finished_at']:%Y-%m-%d %H:%M} UTC ({good_load['rows_loaded']:,} rows, "
            f"{good_load['landed_path']}) stays in the warehouse; this attempt is recorded in audit.batch_attempts."
            if good_load
            else ""
        )
        raise BatchFailed(feed.name, landed.batch_id, failure[0], failure[1] + kept)
    return result


def _refresh_statistics(warehouse, feed: Feed, batch_id: str) -> None:
    """ANALYZE the batch's partition after its load (Postgres, partitioned raw tables), so the next build
    plans with the day's rows counted; a failure is logged, never fails a batch that loaded."""
    try:
        warehouse.refresh_statistics(RAW, feed.name, batch_id)
    except Exception as exc:  # noqa: BLE001 - statistics are an optimisation; the load is committed
        log.warning(
            "feed %s, batch %s: loaded, but its statistics were not refreshed (%s: %s); autovacuum will",
            feed.name,
            batch_id,
            type(exc).__name__,
            exc,
        )


class _LoadMismatch(Exception):
    """The rows the database holds for a batch after its load differ from what was extracted."""


def _write_attempt(
    tx,
    warehouse,
    feed: Feed,
    landed: LandedBatch,
    raw_table,
    quarantine_table,
    audit_row: dict,
    results: pd.DataFrame,
    now: pd.Timestamp,
    load_started: float,
) -> dict | None:
    """One attempt at a batch, in the transaction ``tx``, under the batch's own lock (a second load of the
    same batch, from a scheduled run and a manual rerun at once, waits for this one and then replaces it:
    never both). A loaded attempt replaces the batch's rows; its ``rows_loaded`` and ``rows_quarantined``
    are what the database then counts for the batch, and a count that does not add up to the rows extracted
    raises ``_LoadMismatch`` (the transaction rolls back). A failed attempt (``raw_table`` None) never deletes
    what an earlier attempt loaded. Returns the good load kept, if any."""
    tx.lock(f"batch {landed.batch_id}", f"batch {landed.batch_id} (another load of the same batch)")
    good_load = None
    if raw_table is not None:
        tx.replace_rows(RAW, feed.name, "_batch_id", landed.batch_id, raw_table)
        tx.replace_rows(QUARANTINE, feed.name, "_batch_id", landed.batch_id, quarantine_table)
        loaded = tx.count(RAW, feed.name, "_batch_id", landed.batch_id)
        quarantined = tx.count(QUARANTINE, feed.name, "_batch_id", landed.batch_id)
        if loaded + quarantined != audit_row["rows_extracted"]:
            raise _LoadMismatch(
                f"after the load the warehouse holds {loaded:,} rows in raw.{feed.name} and {quarantined:,} in "
                f"quarantine.{feed.name} for this batch, but {audit_row['rows_extracted']:,} were extracted; "
                "the load was rolled back. Rerun the batch; if it happens again, report it with this message"
            )
        audit_row.update(rows_loaded=loaded, rows_quarantined=quarantined)
    else:
        good_load = _good_load(warehouse, landed.batch_id)
        if good_load is None:
            tx.execute(f'delete from "{RAW}"."{feed.name}" where _batch_id = ?', [landed.batch_id])
            tx.execute(f'delete from "{QUARANTINE}"."{feed.name}" where _batch_id = ?', [landed.batch_id])
    audit_row["load_seconds"] = time.perf_counter() - load_started
    attempt = arrow_table(pd.DataFrame([audit_row]), BATCH_ATTEMPTS)
    tx.append(AUDIT, "batch_attempts", attempt)
    if good_load is None:
        tx.replace_rows(AUDIT, "batches", "batch_id", landed.batch_id, attempt)
        tx.replace_rows(
            AUDIT, "validation_results", "batch_id", landed.batch_id, arrow_table(results, VALIDATION_RESULTS)
        )
    if raw_table is not None and raw_table.num_rows and feed.incremental_field:
        high = pd.Series(raw_table.column(feed.incremental_field).to_pandas()).max()
        if pd.notna(high):
            _raise_watermark(tx, feed.name, pd.Timestamp(high).to_pydatetime(), landed.batch_id, now)
    return good_load


def _good_load(warehouse, batch_id: str) -> dict | None:
    """The batch's current audit row if an earlier attempt loaded it, else None."""
    rows = warehouse.query(
        "select rows_loaded, landed_path, finished_at from audit.batches where batch_id = ? and status = 'loaded'",
        [batch_id],
    ).to_pylist()
    return rows[0] if rows else None


def ingest(
    feed_name: str, start: dt.datetime, end: dt.datetime, warehouse_url: str | None = None
) -> BatchResult:
    """Both steps in one call (what an Airflow DAG does in two tasks)."""
    return validate_and_load(extract_and_land(feed_name, start, end), warehouse_url)
