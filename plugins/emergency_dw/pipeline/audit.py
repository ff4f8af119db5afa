"""A batch's audit trail, written in its load's transaction: the attempt (``audit.batch_attempts``, every
attempt; ``audit.batches``, the current one: the last good load, or the failed attempt of a batch that never
loaded), its rules' outcomes (``audit.validation_results``) and the feed's high watermark
(``audit.watermarks``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..catalog import Feed
from .batch import BatchResult, Failure, LandedBatch, batch_error
from .parse import storable_json
from .tables import AUDIT, BATCH_ATTEMPTS, VALIDATION_RESULTS, arrow_table
from .validate import RuleOutcome
from .verdict import Verdict


@dataclass
class Attempt:
    """One attempt at a batch: its ``audit.batches`` row and its validation results, as they will be written.
    ``rows_loaded`` and ``rows_quarantined`` are filled in by the load from what the warehouse then holds."""

    feed: str
    batch_id: str
    row: dict
    results: pa.Table
    failure: Failure | None
    now: pd.Timestamp  # the batch's time stamp: loaded, quarantined, validated, finished
    load_started: float  # time.perf_counter() when the load began

    def fail(self, failure: Failure) -> None:
        """The attempt failed after all (the load did not reconcile): nothing of it loads."""
        self.failure = failure
        self.row.update(
            status="failed",
            rows_loaded=0,
            rows_quarantined=0,
            rows_rejected=self.row["rows_extracted"],
            failed_rule=failure.rule,
            error=batch_error(self.feed, self.batch_id, failure.rule, failure.message),
        )

    def result(self, verdict: Verdict) -> BatchResult:
        row = self.row
        return BatchResult(
            feed=self.feed,
            batch_id=self.batch_id,
            status=row["status"],
            rows_extracted=row["rows_extracted"],
            rows_loaded=row["rows_loaded"],
            rows_quarantined=row["rows_quarantined"],
            rows_rejected=row["rows_rejected"],
            failed_rule=row["failed_rule"],
            error=row["error"],
            extra_columns=verdict.extra_columns,
            outcomes=verdict.outcomes,
        )


def start_attempt(
    feed: Feed, landed: LandedBatch, rows_extracted: int, verdict: Verdict, validate_seconds: float
) -> Attempt:
    """The attempt's audit row and validation results, stamped now; its load's time counts from here."""
    load_started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC")
    failure = verdict.failure
    row = {
        "batch_id": landed.batch_id,
        "feed": feed.name,
        "interval_start": pd.Timestamp(landed.interval_start) if landed.interval_start else None,
        "interval_end": pd.Timestamp(landed.interval_end) if landed.interval_end else None,
        "status": "failed" if failure else "loaded",
        "rows_extracted": rows_extracted,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "rows_rejected": rows_extracted if failure else 0,
        "failed_rule": failure.rule if failure else None,
        "error": batch_error(feed.name, landed.batch_id, failure.rule, failure.message) if failure else None,
        "extra_columns": storable_json(verdict.extra_columns),
        "source": landed.source,
        "landed_path": landed.path,
        "checksum": hashlib.sha256(Path(landed.path).read_bytes()).hexdigest(),
        "started_at": pd.Timestamp(landed.started_at) if landed.started_at else now,
        "finished_at": now,
        "extract_seconds": landed.extract_seconds,
        "validate_seconds": validate_seconds,
        "load_seconds": 0.0,
    }
    results = validation_results(feed, landed.batch_id, verdict.outcomes, now)
    return Attempt(feed.name, landed.batch_id, row, results, failure, now, load_started)


def validation_results(feed: Feed, batch_id: str, outcomes: list[RuleOutcome], now: pd.Timestamp) -> pa.Table:
    """``audit.validation_results``' rows of the batch: one per rule."""
    frame = pd.DataFrame(
        [
            {
                "batch_id": batch_id,
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
    return arrow_table(frame, VALIDATION_RESULTS)


def record_attempt(tx, attempt: Attempt, current: bool) -> None:
    """Append the attempt to ``audit.batch_attempts``; when it is the batch's ``current`` one (it loaded, or
    no earlier attempt did), it replaces the batch's row in ``audit.batches`` and its validation results."""
    attempt.row["load_seconds"] = time.perf_counter() - attempt.load_started
    row = arrow_table(pd.DataFrame([attempt.row]), BATCH_ATTEMPTS)
    tx.append(AUDIT, "batch_attempts", row)
    if current:
        tx.replace_rows(AUDIT, "batches", "batch_id", attempt.batch_id, row)
        tx.replace_rows(AUDIT, "validation_results", "batch_id", attempt.batch_id, attempt.results)


def good_load(warehouse, batch_id: str) -> dict | None:
    """The batch's current audit row if an earlier attempt loaded it, else None."""
    rows = warehouse.query(
        "select rows_loaded, landed_path, finished_at from audit.batches where batch_id = ? and status = 'loaded'",
        [batch_id],
    ).to_pylist()
    return rows[0] if rows else None


def good_load_kept(good: dict | None) -> str:
    """What a failed attempt's error adds when an earlier good load stays: when, how many rows, which file."""
    if not good:
        return ""
    return (
        f" The good load of {good['finished_at']:%Y-%m-%d %H:%M} UTC ({good['rows_loaded']:,} rows, "
        f"{good['landed_path']}) stays in the warehouse; this attempt is recorded in audit.batch_attempts."
    )


WATERMARK_UPSERT = f"""
insert into "{AUDIT}"."watermarks" (feed, high_watermark, batch_id, updated_at) values (?, ?, ?, ?)
on conflict (feed) do update set
    high_watermark = excluded.high_watermark, batch_id = excluded.batch_id, updated_at = excluded.updated_at
where "watermarks".high_watermark is null
    or "watermarks".high_watermark < excluded.high_watermark
    or ("watermarks".high_watermark = excluded.high_watermark and "watermarks".batch_id < excluded.batch_id)
"""


def raise_watermark(tx, feed: str, high: dt.datetime, batch_id: str, now: pd.Timestamp) -> None:
    """Move the feed's high watermark up to ``high`` (never down), in the batch's transaction; on a tie
    the later batch id (the later day) is the one recorded, whichever loaded first.

    One statement, so two batches of the feed loading at once neither collide on the feed's row (a
    delete and insert would fail one of them on the primary key) nor let the lower mark win."""
    tx.execute(WATERMARK_UPSERT, [feed, high, batch_id, now.to_pydatetime()])
