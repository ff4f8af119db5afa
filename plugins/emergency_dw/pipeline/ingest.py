"""One batch of one feed: extract -> land -> validate -> quarantine -> load -> audit.

Two steps, so an Airflow DAG can run them as two tasks that pass only a small dict through XCom:
``extract_and_land`` (source to the raw lake) and ``validate_and_load`` (lake to warehouse). A batch
is identified by its feed and interval, so a rerun replaces exactly what the previous run wrote.

``validate_and_load`` tells the story of a batch; each step is a module of its own: ``rules`` (the suite
made ready for the batch), ``verdict`` (parse and validate: fail, or load with rows held), ``split`` (the
rows that load and the rows quarantined), ``audit`` (the attempt's record) and ``load`` (one transaction).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Feed, FileDrop, get_feed
from ..config import LOCAL_TZ, claim_data_directory, settings
from ..warehouse import connect
from .audit import good_load_kept, start_attempt
from .batch import BatchFailed, BatchResult, LandedBatch, batch_id_for, day_interval
from .load import load_batch
from .parse import Parsed
from .rules import batch_window, resolve_rules
from .split import split_rows
from .tables import arrow_table, ensure_pipeline_tables
from .verdict import judge, parse_delivered

__all__ = [  # the pipeline's public entry: DAGs, the command line, the benchmark and the tests use these
    "BatchFailed",
    "BatchResult",
    "LandedBatch",
    "arrow_table",
    "batch_id_for",
    "day_interval",
    "extract_and_land",
    "ingest",
    "land_file",
    "lake_path",
    "resolve_rules",
    "validate_and_load",
]


# ---------------------------------------------------------------- the lake
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
def validate_and_load(landed: LandedBatch | dict, warehouse_url: str | None = None) -> BatchResult:
    """Validate the landed batch and load it atomically; always writes the audit trail.

    The warehouse is held only while it is read (the rules' reference sets and history) and while the
    batch is loaded, not while the batch is parsed and validated: the embedded DuckDB file admits one
    process at a time, and this lets feeds loading side by side validate side by side.

    Raises ``BatchFailed`` (after auditing) when the batch fails as a whole."""
    if isinstance(landed, dict):
        landed = LandedBatch(**landed)
    return _validate_and_load(warehouse_url or settings().warehouse_url, get_feed(landed.feed), landed)


def _validate_and_load(warehouse_url: str, feed: Feed, landed: LandedBatch) -> BatchResult:
    """Parse, resolve the rules, judge, start the audit record, split, load in one transaction, acknowledge."""
    started = time.perf_counter()
    delivered = pq.read_table(landed.path)
    parsed = parse_delivered(feed, delivered)
    with _warehouse(warehouse_url) as warehouse:
        ensure_pipeline_tables(warehouse, feed)
        rules = []
        if isinstance(parsed, Parsed):
            rules = resolve_rules(warehouse, feed, landed.batch_id, parsed.frame, batch_window(landed))
    verdict = judge(feed, landed.batch_id, parsed, rules)
    validate_seconds = time.perf_counter() - started if verdict.parsed else 0.0
    attempt = start_attempt(feed, landed, delivered.num_rows, verdict, validate_seconds)
    rows = None if verdict.failure else split_rows(feed, landed, delivered, verdict, attempt.now)
    del delivered  # the batch as delivered is in the lake; only its quarantined records were needed
    with _warehouse(warehouse_url) as warehouse:
        loaded = load_batch(warehouse, feed, rows, attempt)
    if loaded.failure:
        message = loaded.failure.message + good_load_kept(loaded.good_load)
        raise BatchFailed(feed.name, landed.batch_id, loaded.failure.rule, message)
    _acknowledge_files(feed, landed)
    return attempt.result(verdict)


@contextlib.contextmanager
def _warehouse(url: str):
    warehouse = connect(url)
    try:
        yield warehouse
    finally:
        warehouse.close()


def _acknowledge_files(feed: Feed, landed: LandedBatch) -> None:
    """The files a loaded batch was read from are marked processed in the drop folder (not read again)."""
    if landed.files:
        from ..connectors.file_drop import mark_processed
        from ..connectors.settings import drop_root

        mark_processed([Path(p) for p in landed.files], drop_root(feed))


def ingest(
    feed_name: str, start: dt.datetime, end: dt.datetime, warehouse_url: str | None = None
) -> BatchResult:
    """Both steps in one call (what an Airflow DAG does in two tasks)."""
    return validate_and_load(extract_and_land(feed_name, start, end), warehouse_url)
