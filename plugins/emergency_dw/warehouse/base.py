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
        """Delete the rows where key_column = key_value, then bulk-insert ``data``; returns rows inserted."""

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
        self, schema: str, table: str, columns: Sequence[ColumnSpec], primary_key: Sequence[str] = ()
    ) -> list[str]:
        """Create the table if missing; add columns that are missing (returns their names)."""

    def ensure_index(self, schema: str, table: str, column: str) -> None:
        """An index on the column where the backend needs one to find a batch's rows."""

    @contextmanager
    def transaction(self) -> Iterator[Transaction]: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...
    def close(self) -> None: ...
