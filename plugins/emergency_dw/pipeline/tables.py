"""The warehouse tables the pipeline writes: raw, quarantine and audit, derived from the catalog, and their
rows as Arrow tables typed as they load (``arrow_table``)."""

from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa

from ..catalog import Feed
from ..warehouse import ColumnSpec
from ..warehouse.grants import reader_roles

RAW, QUARANTINE, AUDIT = "raw", "quarantine", "audit"
log = logging.getLogger(__name__)

LINEAGE = [
    ColumnSpec("_batch_id", "string", nullable=False),
    ColumnSpec("_row", "integer", nullable=False),
    ColumnSpec("_loaded_at", "timestamp", nullable=False),
    ColumnSpec("_source", "string"),
    ColumnSpec("_extra", "json"),
]


def raw_columns(feed: Feed) -> list[ColumnSpec]:
    """``raw.<feed>``: the catalog's columns, typed, then the lineage columns."""
    return [ColumnSpec(c.name, c.type) for c in feed.columns] + LINEAGE


BATCH_COLUMN = "_batch_id"
LOADED_COLUMN = "_loaded_at"


def raw_build_index_columns(feed: Feed) -> tuple[str, ...]:
    """The columns of ``raw.<feed>`` indexed for the build, for the catalog's big feeds: the event time
    (an incremental model reads the days it rebuilds, in_build_days) and the load time (what was loaded
    since the last build); for a re-delivered feed, the load time (the build tests its latest loads:
    not_null_in_latest_loads). Without them every daily build reads every day ever loaded (Postgres;
    DuckDB's zone maps need no index)."""
    if feed.partitioned and feed.event_time is not None:
        return (feed.event_time, LOADED_COLUMN)
    return (LOADED_COLUMN,) if feed.redelivered else ()


def raw_partition_column(feed: Feed) -> str | None:
    """The column ``raw.<feed>`` is partitioned by (one partition per batch), for the catalog's big feeds."""
    return BATCH_COLUMN if feed.partitioned else None


def ensure_raw_table(warehouse, feed: Feed) -> list[str]:
    """Create ``raw.<feed>`` (on Postgres partitioned by batch when the catalog says so; a table created
    before keeps its layout), or add the columns it lacks; returns those added."""
    return warehouse.ensure_table(RAW, feed.name, raw_columns(feed), partition_by=raw_partition_column(feed))


def ensure_batch_partition(warehouse, feed: Feed, batch_id: str) -> str | None:
    """The partition of ``raw.<feed>`` for the batch, created on its first load, when the table is
    partitioned (whatever the catalog says now: the table's layout decides); None otherwise."""
    return warehouse.ensure_partition(RAW, feed.name, batch_id)


QUARANTINE_COLUMNS = [
    ColumnSpec("_batch_id", "string", nullable=False),
    ColumnSpec("_row", "integer", nullable=False),
    ColumnSpec("_failed_rules", "json", nullable=False),
    ColumnSpec("_errors", "json"),
    ColumnSpec("_record", "json", nullable=False),
    ColumnSpec("_quarantined_at", "timestamp", nullable=False),
    ColumnSpec("_source", "string"),
]

BATCHES = [
    ColumnSpec("batch_id", "string", nullable=False),
    ColumnSpec("feed", "string", nullable=False),
    ColumnSpec("interval_start", "timestamp"),
    ColumnSpec("interval_end", "timestamp"),
    ColumnSpec("status", "string", nullable=False),  # loaded | failed
    ColumnSpec("rows_extracted", "integer", nullable=False),
    ColumnSpec("rows_loaded", "integer", nullable=False),
    ColumnSpec("rows_quarantined", "integer", nullable=False),
    ColumnSpec(
        "rows_rejected", "integer", nullable=False
    ),  # a failed batch's rows: kept in the lake, not loaded
    ColumnSpec("failed_rule", "string"),
    ColumnSpec("error", "string"),
    ColumnSpec("extra_columns", "json"),
    ColumnSpec("source", "string"),
    ColumnSpec("landed_path", "string"),
    ColumnSpec("checksum", "string"),  # sha256 of the landed Parquet file
    ColumnSpec("started_at", "timestamp"),
    ColumnSpec("finished_at", "timestamp"),
    ColumnSpec("extract_seconds", "float"),
    ColumnSpec("validate_seconds", "float"),
    ColumnSpec("load_seconds", "float"),
]

# Every attempt at a batch, good or failed, as audit.batches records it (audit.batches keeps the current one:
# the last good load, or the failed attempt of a batch that never loaded).
BATCH_ATTEMPTS = BATCHES

VALIDATION_RESULTS = [
    ColumnSpec("batch_id", "string", nullable=False),
    ColumnSpec("feed", "string", nullable=False),
    ColumnSpec("rule", "string", nullable=False),
    ColumnSpec("expectation", "string", nullable=False),
    ColumnSpec("column_name", "string"),
    ColumnSpec("severity", "string", nullable=False),
    ColumnSpec("success", "boolean", nullable=False),
    ColumnSpec("unexpected_count", "integer", nullable=False),
    ColumnSpec("observed", "json"),
    ColumnSpec("skipped", "string"),
    ColumnSpec("description", "string"),
    ColumnSpec("validated_at", "timestamp", nullable=False),
]

WATERMARKS = [
    ColumnSpec("feed", "string", nullable=False),
    ColumnSpec("high_watermark", "timestamp"),
    ColumnSpec("batch_id", "string"),
    ColumnSpec("updated_at", "timestamp"),
]

# Every production build (edw build, warehouse__build): what it could see when it started (the loaded
# batches: their count and a fingerprint of their ids and finish times) and how it ended (pipeline/builds.py).
BUILDS = [
    ColumnSpec("build_id", "string", nullable=False),
    ColumnSpec("via", "string", nullable=False),  # edw build | warehouse__build <run id>
    ColumnSpec("started_at", "timestamp", nullable=False),
    ColumnSpec("finished_at", "timestamp", nullable=False),
    ColumnSpec("status", "string", nullable=False),  # success | failed
    ColumnSpec("batches_seen", "integer", nullable=False),
    ColumnSpec("batches_fingerprint", "string", nullable=False),
    ColumnSpec("nodes", "integer", nullable=False),
    ColumnSpec("failed_nodes", "integer", nullable=False),
]


AUDIT_TABLES = ("batches", "batch_attempts", "validation_results", "watermarks", "builds")

ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


def column_array(frame: pd.DataFrame, spec: ColumnSpec) -> pa.Array:
    """``frame``'s column ``spec`` (all nulls when it has none) as the Arrow array the pipeline loads."""
    values = frame[spec.name] if spec.name in frame.columns else pd.Series([None] * len(frame))
    if spec.type == "date":
        values = values.astype(object).where(values.notna(), None)
    return pa.array(values, type=ARROW_TYPES[spec.type], from_pandas=True)


def arrow_table(frame: pd.DataFrame, columns: list[ColumnSpec]) -> pa.Table:
    """``frame`` as an Arrow table of ``columns``, typed as the pipeline loads them."""
    return pa.table([column_array(frame, spec) for spec in columns], names=[c.name for c in columns])


def masked_quarantine_view(feed: Feed) -> str:
    """The auditors' view of ``quarantine.<feed>`` with personal fields masked (feeds with PII only)."""
    return f"quarantine_{feed.name}"


def ensure_masked_quarantine(warehouse, feed: Feed, readers: tuple[str, ...]) -> bool:
    """``audit.quarantine_<feed>``, the feed's quarantine with its personal fields masked in ``_record``
    (keyed by the source's headers) and ``_errors``: on Postgres readable by ``readers`` (the auditor);
    DuckDB has no roles, and gets the same view. Returns True when the view was created or changed."""
    pii = [c for c in feed.columns if c.pii]
    if not pii:
        return False
    from ..warehouse.masking import ensure_masked_view

    try:
        return ensure_masked_view(
            warehouse,
            QUARANTINE,
            feed.name,
            AUDIT,
            masked_quarantine_view(feed),
            columns=[c.name for c in QUARANTINE_COLUMNS],
            record_keys=sorted({c.header for c in pii} | {c.name for c in pii}),
            error_columns=[c.name for c in pii],
            readers=readers,
        )
    except Exception as exc:  # noqa: BLE001 - a missing view must not stop the feed's data from loading
        log.warning(
            "feed %s: could not create the masked quarantine view audit.%s (%s: %s); auditors cannot read "
            "its quarantine until it exists (the role running the pipeline must own it)",
            feed.name,
            masked_quarantine_view(feed),
            type(exc).__name__,
            exc,
        )
        return False


def ensure_pipeline_tables(warehouse, feed: Feed) -> list[str]:
    """Create what a feed's batch writes to; returns raw columns added to an existing table."""
    for schema in (RAW, QUARANTINE, AUDIT):
        warehouse.ensure_schema(schema)
    added = ensure_raw_table(warehouse, feed)
    warehouse.ensure_table(QUARANTINE, feed.name, QUARANTINE_COLUMNS)
    for schema in (RAW, QUARANTINE):
        warehouse.ensure_index(schema, feed.name, BATCH_COLUMN)  # none on a table partitioned by it
    for column in raw_build_index_columns(feed):
        warehouse.ensure_index(RAW, feed.name, column)
    warehouse.ensure_table(AUDIT, "batches", BATCHES, primary_key=["batch_id"])
    warehouse.ensure_table(AUDIT, "batch_attempts", BATCH_ATTEMPTS)
    warehouse.ensure_table(AUDIT, "validation_results", VALIDATION_RESULTS)
    warehouse.ensure_table(AUDIT, "watermarks", WATERMARKS, primary_key=["feed"])
    readers = reader_roles() if warehouse.dialect == "postgres" else {}
    ensure_masked_quarantine(warehouse, feed, readers.get(AUDIT, ()))
    grant_pipeline_readers(warehouse, [feed], readers)
    return added


def pipeline_relations(feeds: list[Feed]) -> dict[str, list[str]]:
    """What the batches of ``feeds`` write, by schema, with the auditors' masked quarantine views."""
    names = [feed.name for feed in feeds]
    views = [masked_quarantine_view(feed) for feed in feeds if any(c.pii for c in feed.columns)]
    return {RAW: names, QUARANTINE: names, AUDIT: [*AUDIT_TABLES, *views]}


def grant_pipeline_readers(warehouse, feeds: list[Feed], readers: dict[str, tuple[str, ...]]) -> None:
    """Postgres: the readers of raw, quarantine and audit in dbt_project.yml's ``reader_roles`` (the auditor
    reads audit) get USAGE on the schema and SELECT on what the batches of ``feeds`` write there, when they
    exist and lack them: a database where roles.sql never ran is readable as soon as a batch loads. Run by
    every batch (its feed) and by the build (every feed: roles created since the last load get theirs)."""
    from ..warehouse.grants import grant_readers

    for schema, relations in pipeline_relations(feeds).items():
        if not readers.get(schema):
            continue
        try:
            grant_readers(warehouse, schema, relations, readers[schema])
        except Exception as exc:  # noqa: BLE001 - a missing grant must not stop the feed's data from loading
            log.warning(
                "could not grant %s read access to %s (%s: %s); they cannot read it until the role running "
                "the pipeline, as the owner of its tables, grants it",
                ", ".join(readers[schema]),
                schema,
                type(exc).__name__,
                exc,
            )


def existing_tables(warehouse, schema: str) -> set[str]:
    """The tables and views of ``schema`` that exist."""
    rows = warehouse.query(
        "select table_name from information_schema.tables where table_schema = ?", [schema]
    ).to_pylist()
    return {r["table_name"] for r in rows}


def ensure_raw_tables(warehouse, feeds: list[Feed]) -> list[str]:
    """Create, empty, the ``raw.<feed>`` tables of ``feeds`` that do not exist (the pipeline's own DDL), so
    dbt's staging views of feeds never ingested have a relation to read; returns the feeds created.
    Existing tables are left as they are (their next batch adds any column the catalog gained)."""
    warehouse.ensure_schema(RAW)
    present = existing_tables(warehouse, RAW)
    created = []
    for feed in feeds:
        if feed.name not in present:
            ensure_raw_table(warehouse, feed)
            created.append(feed.name)
    return created


def loaded_feeds(warehouse) -> set[str]:
    """Feeds with at least one loaded batch in ``audit.batches`` (none when nothing was ingested yet)."""
    if "batches" not in existing_tables(warehouse, AUDIT):
        return set()
    rows = warehouse.query("select distinct feed from audit.batches where status = 'loaded'").to_pylist()
    return {r["feed"] for r in rows}
