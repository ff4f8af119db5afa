"""Retention of the big raw tables: on Postgres, the partitions of old batches are detached.

The catalog's partitioned feeds (``Feed.partitioned``: power and cable readings, positions) keep one
partition per batch in ``raw.<feed>``. ``EDW_RAW_RETENTION_DAYS`` (unset: keep everything) says how long a
batch stays there after its interval ended (``audit.batches.interval_end``); ``edw retention`` then
detaches the older batches' partitions and moves them, rows and all, to the schema ``raw_detached``: nothing
is dropped (a DBA decides when), and the raw lake keeps every batch as it was delivered. The batch's audit
rows stay as they were. The embedded DuckDB warehouse has no partitions: there is nothing to detach.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from ..catalog import Feed, all_feeds
from .tables import AUDIT, BATCH_COLUMN, RAW, existing_tables

RETENTION_ENV = "EDW_RAW_RETENTION_DAYS"
RAW_DETACHED = "raw_detached"


def retention_days() -> int | None:
    """``EDW_RAW_RETENTION_DAYS`` as a number of days; None when unset (raw keeps every batch)."""
    text = (os.environ.get(RETENTION_ENV) or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"{RETENTION_ENV}={text!r}: give a whole number of days (at least 1), or unset it to keep every batch"
        )
    return int(text)


@dataclass(frozen=True)
class Expired:
    """A batch whose interval ended before the cutoff, and what became of its partition."""

    feed: str
    batch_id: str
    interval_end: dt.datetime
    rows_loaded: int
    partition: str  # raw.<partition> before; raw_detached.<name> once detached


@dataclass
class RetentionResult:
    days: int
    cutoff: dt.datetime
    dry_run: bool
    expired: list[Expired]
    unpartitioned: list[str]  # partitioned feeds whose raw table was created before partitioning


def partitioned_feeds() -> list[Feed]:
    return [feed for feed in all_feeds() if feed.partitioned]


def detach_expired(
    warehouse, days: int, now: dt.datetime | None = None, dry_run: bool = False
) -> RetentionResult:
    """Detach (or, with ``dry_run``, only list) the raw partitions of the batches whose interval ended more
    than ``days`` days before ``now``. Each batch's partition is detached under the batch's own lock, so a
    load of the same batch at that moment waits for it (and then loads into a new partition) or goes first."""
    if days < 1:
        raise ValueError(f"retention of {days} days: keep at least 1 day")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=days)
    result = RetentionResult(days, cutoff, dry_run, [], [])
    if warehouse.dialect != "postgres" or "batches" not in existing_tables(warehouse, AUDIT):
        return result
    present = existing_tables(warehouse, RAW)
    for feed in partitioned_feeds():
        if feed.name not in present:
            continue
        if not _is_partitioned(warehouse, feed):
            result.unpartitioned.append(feed.name)
            continue
        batches = warehouse.query(
            "select batch_id, interval_end, rows_loaded from audit.batches "
            "where feed = ? and interval_end < ? order by interval_end, batch_id",
            [feed.name, cutoff],
        ).to_pylist()
        for batch in batches:
            batch_id = batch["batch_id"]
            if dry_run:
                name = warehouse.partition_of(RAW, feed.name, batch_id)
                moved = f"{RAW}.{name}" if name else None
            else:
                moved = warehouse.detach_partition(
                    RAW,
                    feed.name,
                    batch_id,
                    RAW_DETACHED,
                    lock=(f"batch {batch_id}", f"batch {batch_id} (a load of it)"),
                )
            if moved:
                result.expired.append(
                    Expired(feed.name, batch_id, batch["interval_end"], int(batch["rows_loaded"]), moved)
                )
    return result


@dataclass(frozen=True)
class Migrated:
    feed: str
    kept: str  # the unpartitioned table, in raw_detached
    partitions: int


def partition_existing_tables(warehouse) -> list[Migrated]:
    """Partition, once, the raw tables of the catalog's partitioned feeds that a warehouse created before
    they were partitioned: each becomes partitioned by batch with its rows, grants and name, and the old
    table is kept in ``raw_detached`` (Postgres; nothing on DuckDB)."""
    if warehouse.dialect != "postgres":
        return []
    present = existing_tables(warehouse, RAW)
    done = []
    for feed in partitioned_feeds():
        if feed.name not in present or _is_partitioned(warehouse, feed):
            continue
        made = warehouse.partition_existing(RAW, feed.name, BATCH_COLUMN, RAW_DETACHED)
        if made is not None:
            done.append(Migrated(feed.name, *made))
    return done


def _is_partitioned(warehouse, feed: Feed) -> bool:
    rows = warehouse.query(
        "select c.relkind = 'p' as partitioned from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = ? and c.relname = ?",
        [RAW, feed.name],
    ).to_pylist()
    return bool(rows and rows[0]["partitioned"])
