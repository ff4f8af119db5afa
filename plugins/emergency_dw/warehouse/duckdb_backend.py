"""The DuckDB warehouse: one connection, Arrow tables inserted BY NAME through a registered view.

JSON and ICU (time zones) are statically linked into duckdb 2.0.1: nothing is installed or downloaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from emergency_dw.warehouse import (
    BulkTransaction,
    add_column_ddl,
    check_data_columns,
    check_specs,
    qualified,
    quote_ident,
    table_ddl,
)
from emergency_dw.warehouse.base import ColumnSpec

SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "json": "JSON",
}


def _setting_text(value: str) -> str:
    """A setting's value inside single quotes (SET takes no parameters)."""
    return value.replace("'", "''")


DuckDBTransaction = BulkTransaction  # the verbs are the same; only _run and _insert differ


class DuckDBWarehouse:
    dialect = "duckdb"

    def __init__(
        self,
        path: str | Path,
        memory_limit: str | None = None,
        threads: int = 0,
        temp_directory: str | Path | None = None,
    ) -> None:
        """``memory_limit`` (e.g. '1GB'), ``threads`` (0: every core) and ``temp_directory`` (where what
        does not fit is spilled) bound the database; None leaves DuckDB's defaults."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._con = duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
        try:
            if memory_limit:
                self._con.execute(f"SET memory_limit = '{_setting_text(memory_limit)}'")
            if threads:
                self._con.execute(f"SET threads = {int(threads)}")
            if temp_directory:
                Path(temp_directory).mkdir(parents=True, exist_ok=True)
                self._con.execute(f"SET temp_directory = '{_setting_text(str(temp_directory))}'")
        except duckdb.Error as exc:
            self._con.close()
            raise ValueError(
                f"DuckDB refused the settings memory_limit={memory_limit!r}, threads={threads!r}, "
                f"temp_directory={temp_directory!r}: {exc} (set EDW_DUCKDB_MEMORY_LIMIT like '1GB' and "
                "EDW_DUCKDB_THREADS to a whole number)"
            ) from exc
        self._in_transaction = False

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Fetch everything: an unfinished result would block the connection's next statement.
        return self._con.execute(sql, list(params)).fetchall()

    def _columns(self, schema: str, table: str) -> list[str]:
        rows = self._run(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        )
        return [name for (name,) in rows]

    def _insert(self, schema: str, table: str, data: pa.Table) -> int:
        check_data_columns(schema, table, data.column_names, self._columns(schema, table))
        if data.num_rows == 0:
            return 0
        view = f"_edw_arrow_{uuid.uuid4().hex}"
        self._con.register(view, data)
        try:
            (count,) = self._run(
                f"INSERT INTO {qualified(schema, table)} BY NAME SELECT * FROM {quote_ident(view)}"
            )[0]
        finally:
            self._con.unregister(view)
        return int(count)

    def ensure_schema(self, schema: str) -> None:
        self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")

    def ensure_table(
        self, schema: str, table: str, columns: Sequence[ColumnSpec], primary_key: Sequence[str] = ()
    ) -> list[str]:
        """Create the table, or add the missing columns (always nullable: the table may hold rows)."""
        check_specs(columns, primary_key)
        existing = self._columns(schema, table)
        if not existing:
            self._run(table_ddl(schema, table, columns, primary_key, SQL_TYPES))
            return []
        added = [c for c in columns if c.name not in existing]
        for col in added:
            self._run(add_column_ddl(schema, table, col, SQL_TYPES))
        return [col.name for col in added]

    @contextmanager
    def transaction(self) -> Iterator[DuckDBTransaction]:
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        self._run("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield DuckDBTransaction(self)
        except BaseException:
            self._run("ROLLBACK")
            raise
        else:
            self._run("COMMIT")
        finally:
            self._in_transaction = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        relation = self._con.sql(sql, params=list(params) or None)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def close(self) -> None:
        self._con.close()
