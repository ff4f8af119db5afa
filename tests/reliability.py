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
TIMING_OF_TABLE = {
    "audit.watermarks": {"updated_at"},  # when the watermark moved, not the data's time
    # the lake file of an attempt is named by when it landed (its checksum says what it holds)
    "audit.batches": {"landed_path"},
    "audit.batch_attempts": {"landed_path"},
}


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


def warehouse_rows(url: str, tables: list[tuple[str, str]]) -> dict[str, pd.DataFrame]:
    """Per table: every row without the timing columns, as text, in a canonical order (for exact
    comparisons with readable diffs). A table that does not exist is an empty frame."""
    warehouse = connect(url)
    out: dict[str, pd.DataFrame] = {}
    try:
        existing = {
            (r["table_schema"], r["table_name"])
            for r in warehouse.query(
                "select table_schema, table_name from information_schema.tables"
            ).to_pylist()
        }
        for schema, table in tables:
            if (schema, table) not in existing:
                out[f"{schema}.{table}"] = pd.DataFrame()
                continue
            frame = warehouse.query(f'select * from "{schema}"."{table}"').to_pandas()
            timing = TIMING | TIMING_OF_TABLE.get(f"{schema}.{table}", set())
            frame = frame.drop(columns=sorted(c for c in frame.columns if c in timing))
            frame = frame[sorted(frame.columns)].astype(str)
            out[f"{schema}.{table}"] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    finally:
        warehouse.close()
    return out


# Rules measured from the batches loaded before this one (the row-count band): when batches load at
# once, or in another order, which earlier batches a run saw is a matter of timing, and so is the band's
# wording in audit.validation_results. Their outcome still has to agree.
HISTORY_RULES = {"row_count_in_band"}


def without_history_context(rows: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``rows`` with the history rules' band (``observed``, ``skipped``, ``description``) blanked."""
    out = dict(rows)
    results = rows.get("audit.validation_results")
    if results is not None and len(results):
        results = results.copy()
        history = results["rule"].isin(HISTORY_RULES)
        results.loc[history, ["observed", "skipped", "description"]] = "<from earlier batches>"
        out["audit.validation_results"] = results.sort_values(list(results.columns)).reset_index(drop=True)
    return out


def assert_same_rows(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame], what: str) -> None:
    """The two warehouses hold the same rows, table by table; a difference names the table and shows rows."""
    assert actual.keys() == expected.keys()
    for name, frame in expected.items():
        other = actual[name]
        if frame.equals(other):
            continue
        merged = frame.merge(other, how="outer", indicator=True) if len(frame.columns) else other
        diff = merged[merged["_merge"] != "both"] if "_merge" in merged else merged
        raise AssertionError(
            f"{what}: {name} differs ({len(other)} rows vs {len(frame)} expected); "
            f"rows only on one side (left_only = expected):\n{diff.head(10).to_string()}"
        )


def load_after_barrier(job: dict) -> dict:
    """A child process's batch (``job``: feed, day, env, barrier): extract and land it, wait at the barrier
    for the other children, then validate and load it, so the loads meet in the warehouse at once."""
    import datetime as dt
    import os

    os.environ.update(job["env"])
    from emergency_dw.pipeline.ingest import day_interval, extract_and_land, validate_and_load

    landed = extract_and_land(job["feed"], *day_interval(dt.date.fromisoformat(job["day"])))
    job["barrier"].wait(timeout=180)
    try:
        result = validate_and_load(landed)
    except Exception as exc:  # noqa: BLE001 - reported to the test, which names it
        return {"batch_id": landed.batch_id, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
    return {"batch_id": result.batch_id, "status": result.status, "error": None}
