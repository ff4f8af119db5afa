"""Helpers of the reliability tests: the warehouse's state as counts and checksums, throwaway databases."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from emergency_dw.warehouse import connect

from databases import create_database, drop_database, postgres_database, postgres_url  # noqa: F401  (re-exported)

# Columns that record when something ran or how long it took: they differ between two identical runs.
TIMING = {
    "_loaded_at",
    "_quarantined_at",
    "started_at",
    "finished_at",
    "extract_seconds",
    "validate_seconds",
    "load_seconds",
    "validated_at",
}
TIMING_OF_TABLE = {"audit.watermarks": {"updated_at"}}  # when the watermark moved, not the data's time


def tables_of(feed: str) -> list[tuple[str, str]]:
    """What one feed's batches write: its raw and quarantine tables and the audit trail."""
    return [
        ("raw", feed),
        ("quarantine", feed),
        ("audit", "batches"),
        ("audit", "validation_results"),
        ("audit", "watermarks"),
    ]


def warehouse_state(url: str, tables: list[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    """Per table: row count and a checksum of every row without the timing columns (order-insensitive).

    A table that does not exist counts as (0, "absent")."""
    warehouse = connect(url)
    out: dict[str, tuple[int, str]] = {}
    try:
        existing = {
            (r["table_schema"], r["table_name"])
            for r in warehouse.query(
                "select table_schema, table_name from information_schema.tables"
            ).to_pylist()
        }
        for schema, table in tables:
            if (schema, table) not in existing:
                out[f"{schema}.{table}"] = (0, "absent")
                continue
            frame = warehouse.query(f'select * from "{schema}"."{table}"').to_pandas()
            timing = TIMING | TIMING_OF_TABLE.get(f"{schema}.{table}", set())
            frame = frame.drop(columns=sorted(c for c in frame.columns if c in timing))
            frame = frame[sorted(frame.columns)]
            rows = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())  # order-insensitive
            digest = hashlib.sha256(rows.tobytes()).hexdigest()
            out[f"{schema}.{table}"] = (len(frame), digest)
    finally:
        warehouse.close()
    return out


def count(url: str, sql: str, params: list | tuple = ()) -> int:
    warehouse = connect(url)
    try:
        return int(warehouse.query(sql, list(params)).column(0)[0].as_py())
    finally:
        warehouse.close()


def batch_rows(url: str, schema: str, feed: str, batch_id: str) -> int:
    """Rows of one batch in ``schema.feed``; 0 when the table does not exist yet."""
    warehouse = connect(url)
    try:
        exists = (
            warehouse.query(
                "select count(*) as n from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, feed],
            )
            .column(0)[0]
            .as_py()
        )
        if not exists:
            return 0
        return int(
            warehouse.query(f'select count(*) as n from "{schema}"."{feed}" where _batch_id = ?', [batch_id])
            .column(0)[0]
            .as_py()
        )
    finally:
        warehouse.close()
