"""The warehouse interface: two backends (DuckDB, Postgres) behind a few bulk, transactional verbs.

The backends know nothing of feeds, batches' rules or validation: they create schemas and tables from
column specs, and move Arrow tables in and out in bulk (never row-by-row INSERT).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

# Logical column types shared with the catalog.
LOGICAL_TYPES = ("string", "integer", "float", "boolean", "date", "timestamp", "json")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # one of LOGICAL_TYPES; timestamp = timestamp with time zone (UTC)
    nullable: bool = True


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def replace_rows(self, schema: str, table: str, key_column: str, key_value: Any, data: pa.Table) -> int:
        """Delete the rows where key_column = key_value, then bulk-insert ``data``; returns rows inserted.
        A table partitioned by ``key_column`` deletes within the value's partition only (the planner prunes
        the others) and inserts straight into it when it exists (else the DEFAULT partition takes the rows)."""

    def append(self, schema: str, table: str, data: pa.Table) -> int: ...
    def count(self, schema: str, table: str, key_column: str, key_value: Any) -> int:
        """The rows where key_column = key_value, as this transaction sees them."""

    def lock(self, key: str, what: str) -> None:
        """Hold a lock named ``key`` until the transaction ends; another holder is waited for (up to
        ``EDW_LOCK_TIMEOUT_SECONDS``), then ``LockTimeout`` names ``what`` is held and by whom."""


class LockTimeout(RuntimeError):
    """A transaction's named lock stayed with another process for longer than the lock timeout."""


class Warehouse(Protocol):
    dialect: str  # "duckdb" | "postgres"

    def ensure_schema(self, schema: str) -> None: ...
    def ensure_table(
        self,
        schema: str,
        table: str,
        columns: Sequence[ColumnSpec],
        primary_key: Sequence[str] = (),
        partition_by: str | None = None,
    ) -> list[str]:
        """Create the table if missing; add columns that are missing (returns their names).

        ``partition_by``: a column each value of which gets a partition of its own, where the backend has
        partitions (Postgres: LIST partitions, and a DEFAULT one for values without theirs; DuckDB ignores
        it). Only a new table is created partitioned: an existing one is left as it is."""

    def ensure_partition(self, schema: str, table: str, value: Any) -> str | None:
        """The partition of ``table`` that holds ``value``, created (empty) if missing, in a short transaction
        of its own; None when the table is not partitioned (DuckDB, or a table created unpartitioned)."""

    def partition_of(self, schema: str, table: str, value: Any) -> str | None:
        """The partition of ``table`` that holds ``value``, or None (no such partition, or no partitions)."""

    def detach_partition(
        self, schema: str, table: str, value: Any, to_schema: str, lock: tuple[str, str] | None = None
    ) -> str | None:
        """Take the partition holding ``value`` out of ``table`` and move it, rows and all, to ``to_schema``, in
        a transaction of its own holding the named ``lock`` (key, what: see ``Transaction.lock``) if given;
        returns its new qualified name, or None when no partition holds ``value`` (DuckDB: never)."""

    def partition_existing(
        self, schema: str, table: str, column: str, keep_schema: str
    ) -> tuple[str, int] | None:
        """Make a table created unpartitioned partitioned by ``column`` (once): the old table is kept in
        ``keep_schema``; returns its name there and the partitions made, or None when there is nothing to do
        (no such table, already partitioned, or no partitions: DuckDB)."""

    def refresh_statistics(self, schema: str, table: str, value: Any) -> str | None:
        """Fresh planner statistics for the partition holding ``value`` (after a load); returns the partition
        analysed, or None when there is none (DuckDB keeps its statistics as it writes)."""

    def ensure_index(self, schema: str, table: str, column: str) -> None:
        """An index on the column where the backend needs one to find a batch's rows."""

    @contextmanager
    def transaction(self) -> Iterator[Transaction]: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...
    def close(self) -> None: ...
