"""A batch into the warehouse in one transaction: its rows (raw and quarantine), its audit trail and the
feed's watermark, or nothing. A load the database does not reconcile with the rows extracted is rolled
back and recorded as a failed attempt; a failed attempt never deletes what an earlier one loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ..catalog import Feed
from .audit import Attempt, good_load, raise_watermark, record_attempt
from .batch import Failure
from .split import Rows
from .tables import QUARANTINE, RAW, ensure_batch_partition

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """How a load ended: the failure (None: the batch loaded) and the earlier good load a failed attempt
    left in place (its ``audit.batches`` row), if any."""

    failure: Failure | None
    good_load: dict | None


class LoadMismatch(Exception):
    """The rows the database holds for a batch after its load differ from what was extracted."""


def load_batch(warehouse, feed: Feed, rows: Rows | None, attempt: Attempt) -> Loaded:
    """Write the attempt (``rows`` None: a failed one, which loads nothing) in one transaction."""
    if rows is not None:
        # A partitioned raw table (Postgres, the big feeds): the batch's partition exists before its load
        # starts, created in a short transaction of its own (see PostgresWarehouse.ensure_partition).
        ensure_batch_partition(warehouse, feed, attempt.batch_id)
    try:
        with warehouse.transaction() as tx:
            kept = write_attempt(tx, warehouse, feed, rows, attempt)
    except LoadMismatch as exc:
        # the transaction rolled back: whatever an earlier attempt loaded is as it was
        attempt.fail(Failure("rows_reconcile", str(exc)))
        with warehouse.transaction() as tx:
            kept = write_attempt(tx, warehouse, feed, None, attempt)
        return Loaded(attempt.failure, kept)
    refresh_statistics(warehouse, feed, attempt.batch_id)
    return Loaded(attempt.failure, kept)


def write_attempt(tx, warehouse, feed: Feed, rows: Rows | None, attempt: Attempt) -> dict | None:
    """One attempt at a batch, in the transaction ``tx``, under the batch's own lock (a second load of the
    same batch, from a scheduled run and a manual rerun at once, waits for this one and then replaces it:
    never both). A loaded attempt replaces the batch's rows; its ``rows_loaded`` and ``rows_quarantined``
    are what the database then counts for the batch, and a count that does not add up to the rows extracted
    raises ``LoadMismatch`` (the transaction rolls back). A failed attempt (``rows`` None) never deletes
    what an earlier attempt loaded. Returns the good load kept, if any."""
    batch_id = attempt.batch_id
    tx.lock(f"batch {batch_id}", f"batch {batch_id} (another load of the same batch)")
    kept = None
    if rows is not None:
        tx.replace_rows(RAW, feed.name, "_batch_id", batch_id, rows.raw)
        tx.replace_rows(QUARANTINE, feed.name, "_batch_id", batch_id, rows.quarantine)
        loaded = tx.count(RAW, feed.name, "_batch_id", batch_id)
        quarantined = tx.count(QUARANTINE, feed.name, "_batch_id", batch_id)
        extracted = attempt.row["rows_extracted"]
        if loaded + quarantined != extracted:
            raise LoadMismatch(
                f"after the load the warehouse holds {loaded:,} rows in raw.{feed.name} and {quarantined:,} in "
                f"quarantine.{feed.name} for this batch, but {extracted:,} were extracted; "
                "the load was rolled back. Rerun the batch; if it happens again, report it with this message"
            )
        attempt.row.update(rows_loaded=loaded, rows_quarantined=quarantined)
    else:
        kept = good_load(warehouse, batch_id)
        if kept is None:
            tx.execute(f'delete from "{RAW}"."{feed.name}" where _batch_id = ?', [batch_id])
            tx.execute(f'delete from "{QUARANTINE}"."{feed.name}" where _batch_id = ?', [batch_id])
    record_attempt(tx, attempt, current=kept is None)
    if rows is not None and rows.raw.num_rows and feed.incremental_field:
        high = pd.Series(rows.raw.column(feed.incremental_field).to_pandas()).max()
        if pd.notna(high):
            raise_watermark(tx, feed.name, pd.Timestamp(high).to_pydatetime(), batch_id, attempt.now)
    return kept


def refresh_statistics(warehouse, feed: Feed, batch_id: str) -> None:
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
