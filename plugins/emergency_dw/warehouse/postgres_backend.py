"""The Postgres warehouse over ADBC: Arrow in by COPY (``adbc_ingest``), Arrow out (``fetch_arrow_table``).

The connection runs with autocommit off: every public verb commits (or rolls back) its own work unless it
runs inside ``transaction()``. ``json`` columns are JSONB: their Arrow string columns are sent as Arrow's
``arrow.json`` extension type, which the driver COPYs in jsonb's binary format. JSONB normalises the text
(key order, white space), and reads come back as plain strings. The driver returns NUMERIC (e.g.
``sum(bigint)``) as strings: cast in SQL (``CAST(sum(x) AS BIGINT)``) for numbers on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from emergency_dw.warehouse import (
    BulkTransaction,
    add_column_ddl,
    check_data_columns,
    check_specs,
    quote_ident,
    table_ddl,
)
from emergency_dw.warehouse.base import ColumnSpec

SQL_TYPES = {
    "string": "TEXT",
    "integer": "BIGINT",
    "float": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "json": "JSONB",
}

# The Arrow type COPY needs for each Postgres column type (binary COPY does not convert widths or kinds).
ARROW_TYPES = {
    "text": pa.string(),
    "character varying": pa.string(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
    "jsonb": pa.json_(pa.string()),
    "json": pa.json_(pa.string()),
}


def to_dollar_placeholders(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...``, leaving quoted strings, quoted identifiers and comments alone."""
    out: list[str] = []
    i, n, number = 0, len(sql), 0
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            number += 1
            out.append(f"${number}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _plain(table: pa.Table) -> pa.Table:
    """Extension columns (arrow.json from json/jsonb) as their storage type, so reads match DuckDB's."""
    for index, field in enumerate(table.schema):
        if isinstance(field.type, pa.BaseExtensionType):
            column = table.column(index)
            storage = pa.chunked_array([chunk.storage for chunk in column.chunks], field.type.storage_type)
            table = table.set_column(index, field.name, storage)
    return table


PostgresTransaction = BulkTransaction  # the verbs are the same; only _run and _insert differ

# Concurrent loads (two feeds, or two days of one feed, at once) may both find a schema or table missing
# and both create it: Postgres then fails one with "already exists" or a unique violation on its
# catalog. Every DDL of this backend first takes this transaction-level advisory lock, then looks again.
DDL_LOCK_KEY = 7_201_911_027  # any constant bigint, the same in every process


class PostgresWarehouse:
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self._con = adbc.connect(url)
        self._cur = self._con.cursor()
        self._in_transaction = False
        self._run("SET TIME ZONE 'UTC'")
        self._con.commit()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(to_dollar_placeholders(sql), parameters=list(params) if params else None)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        self._run(sql, params)
        return self._cur.fetch_arrow_table()

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """Commit on success (rollback on failure), unless inside ``transaction()``, which decides."""
        if self._in_transaction:
            yield
            return
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        self._con.commit()

    def _column_types(self, schema: str, table: str) -> dict[str, str]:
        rows = self._fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).to_pylist()
        return {row["column_name"]: row["data_type"] for row in rows}

    def _insert(self, schema: str, table: str, data: pa.Table) -> int:
        types = self._column_types(schema, table)
        check_data_columns(schema, table, data.column_names, types)
        if data.num_rows == 0:
            return 0
        for index, name in enumerate(data.column_names):
            target = ARROW_TYPES.get(types[name])
            if target is not None and data.schema.field(index).type != target:
                data = data.set_column(index, name, data.column(index).cast(target))
        self._cur.adbc_ingest(table, data, mode="append", db_schema_name=schema)
        return data.num_rows

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(
            self._fetch(f"SELECT CAST(n AS BIGINT) AS n FROM ({sql}) AS counted", params)
            .column("n")[0]
            .as_py()
        )

    def _try_lock(self, key: str) -> str | None:
        """Take the transaction-level advisory lock named ``key``; None when taken, else who holds it."""
        if (
            self._fetch("SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0)) AS got", [key])
            .column("got")[0]
            .as_py()
        ):
            return None
        holders = self._fetch(
            "SELECT l.pid, coalesce(nullif(a.application_name, ''), 'a client') AS app, a.backend_start "
            "FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(?, 0)",
            [key],
        ).to_pylist()
        if not holders:
            return "another Postgres session"
        h = holders[0]
        return (
            f"Postgres session {h['pid']} ({h['app']}, connected {h['backend_start']:%Y-%m-%d %H:%M:%S} UTC)"
        )

    def lock_ddl(self) -> None:
        """Hold the DDL lock until the current transaction ends (see DDL_LOCK_KEY)."""
        self._fetch("SELECT true AS locked FROM pg_advisory_xact_lock(?)", [DDL_LOCK_KEY])

    def ensure_schema(self, schema: str) -> None:
        with self._unit():
            # Look before creating: CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the database
            # even when the schema exists, and a least-privilege role (edw_loader) has none.
            if self._fetch("SELECT 1 FROM pg_namespace WHERE nspname = ?", [schema]).num_rows:
                return
            self.lock_ddl()  # then look again: another process may have created it meanwhile
            if not self._fetch("SELECT 1 FROM pg_namespace WHERE nspname = ?", [schema]).num_rows:
                self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")

    def ensure_table(
        self, schema: str, table: str, columns: Sequence[ColumnSpec], primary_key: Sequence[str] = ()
    ) -> list[str]:
        """Create the table, or add the missing columns (always nullable: the table may hold rows)."""
        check_specs(columns, primary_key)
        with self._unit():
            existing = self._column_types(schema, table)
            if existing and all(c.name in existing for c in columns):
                return []  # the common case: nothing to change, no lock taken
            self.lock_ddl()  # then look again: another process may have changed it meanwhile
            existing = self._column_types(schema, table)
            if not existing:
                self._run(table_ddl(schema, table, columns, primary_key, SQL_TYPES))
                return []
            added = [c for c in columns if c.name not in existing]
            for col in added:
                self._run(add_column_ddl(schema, table, col, SQL_TYPES))
            return [col.name for col in added]

    def ensure_index(self, schema: str, table: str, column: str) -> None:
        """An index on ``column`` (a batch's rows are deleted, replaced and counted by ``_batch_id``: without
        one, each load of a feed would read the whole table three times)."""
        name = f"{table}__{column.strip('_')}_idx"[:63]
        with self._unit():
            found = "SELECT 1 FROM pg_indexes WHERE schemaname = ? AND indexname = ?"
            if self._fetch(found, [schema, name]).num_rows:
                return
            self.lock_ddl()
            if not self._fetch(found, [schema, name]).num_rows:
                self._run(
                    f"CREATE INDEX IF NOT EXISTS {quote_ident(name)} ON {quote_ident(schema)}.{quote_ident(table)} ({quote_ident(column)})"
                )

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        self._con.rollback()  # start clean: nothing of an earlier read may leak in
        self._in_transaction = True
        try:
            yield PostgresTransaction(self)
        except BaseException:
            self._con.rollback()
            raise
        else:
            self._con.commit()
        finally:
            self._in_transaction = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self._unit():
            return _plain(self._fetch(sql, params))

    def close(self) -> None:
        self._cur.close()
        self._con.close()
