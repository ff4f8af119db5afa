"""The Postgres warehouse over ADBC: Arrow in by COPY (``adbc_ingest``), Arrow out (``fetch_arrow_table``).

The connection runs with autocommit off: every public verb commits (or rolls back) its own work unless it
runs inside ``transaction()``. ``json`` columns are JSONB: their Arrow string columns are sent as Arrow's
``arrow.json`` extension type, which the driver COPYs in jsonb's binary format. JSONB normalises the text
(key order, white space), and reads come back as plain strings. The driver returns NUMERIC (e.g.
``sum(bigint)``) as strings: cast in SQL (``CAST(sum(x) AS BIGINT)``) for numbers on both backends.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from emergency_dw.warehouse import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    LOCK_TIMEOUT_ENV,
    BulkTransaction,
    add_column_ddl,
    check_data_columns,
    check_specs,
    numbered_name,
    partition_name,
    qualified,
    quote_ident,
    table_ddl,
)
from emergency_dw.warehouse.base import ColumnSpec, LockTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")

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

# Partitions (a table created with ``partition_by``: LIST partitions, one per value, and a DEFAULT one).
# A partition is created as a table of its own and then attached: ATTACH PARTITION takes SHARE UPDATE
# EXCLUSIVE on the parent, which loads and readers of other partitions do not conflict with (CREATE TABLE
# ... PARTITION OF would take ACCESS EXCLUSIVE on the parent); it takes ACCESS EXCLUSIVE on the DEFAULT
# partition, so it waits for queries reading the whole table. DETACH takes ACCESS EXCLUSIVE on the parent
# (DETACH ... CONCURRENTLY is not allowed beside a DEFAULT partition). Such a statement waits for its locks
# at most DDL_LOCK_WAIT per try, then gives way and tries again (see _politely): a waiting request for
# an exclusive lock would otherwise hold up every later reader of the table behind it.
DDL_LOCK_WAIT = "2s"

PARTITION_KEY = """
select a.attname as key
from pg_partitioned_table as p
join pg_attribute as a on a.attrelid = p.partrelid and a.attnum = p.partattrs[0]
where p.partrelid = to_regclass(?) and p.partstrat = 'l' and p.partnatts = 1
"""

# A partition is found by the value it holds, as Postgres prints its bound (a quote doubled; with
# standard_conforming_strings on, the default, nothing else is escaped), never by its name.
PARTITION_HOLDING = """
select c.relname as name
from pg_inherits as i
join pg_class as c on c.oid = i.inhrelid
where i.inhparent = to_regclass(?)
    and pg_get_expr(c.relpartbound, c.oid)
        = 'FOR VALUES IN (''' || replace(cast(? as text), '''', '''''') || ''')'
"""

DEFAULT_PARTITION = """
select c.relname as name
from pg_inherits as i
join pg_class as c on c.oid = i.inhrelid
where i.inhparent = to_regclass(?) and pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
"""


def _lock_timed_out(exc: BaseException) -> bool:
    """The statement gave up waiting for a lock (lock_timeout: SQLSTATE 55P03)."""
    return getattr(exc, "sqlstate", None) == "55P03" or "lock timeout" in str(exc)


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
        self,
        schema: str,
        table: str,
        columns: Sequence[ColumnSpec],
        primary_key: Sequence[str] = (),
        partition_by: str | None = None,
    ) -> list[str]:
        """Create the table, or add the missing columns (always nullable: the table may hold rows).

        With ``partition_by``, a new table is partitioned by LIST of that column, with a DEFAULT partition
        (``<table>__default``) for the values that have no partition of their own; a partition per value
        comes from ``ensure_partition``. An existing table is not changed into a partitioned one."""
        check_specs(columns, primary_key, partition_by)
        with self._unit():
            existing = self._column_types(schema, table)
            if existing and all(c.name in existing for c in columns):
                return []  # the common case: nothing to change, no lock taken
            self.lock_ddl()  # then look again: another process may have changed it meanwhile
            existing = self._column_types(schema, table)
            if not existing:
                self._run(table_ddl(schema, table, columns, primary_key, SQL_TYPES, partition_by))
                if partition_by:
                    default = self._free_name([schema], partition_name(table, "default"))
                    self._run(
                        f"CREATE TABLE {qualified(schema, default)} PARTITION OF {qualified(schema, table)} DEFAULT"
                    )
                return []
            added = [c for c in columns if c.name not in existing]
            for col in added:
                self._run(add_column_ddl(schema, table, col, SQL_TYPES))
            return [col.name for col in added]

    # ---------------------------------------------------------------- partitions
    def _partition_key(self, schema: str, table: str) -> str | None:
        """The column a table is LIST-partitioned by; None for a plain table (or none at all)."""
        rows = self._fetch(PARTITION_KEY, [qualified(schema, table)]).to_pylist()
        return rows[0]["key"] if rows else None

    def _find_partition(self, schema: str, table: str, value: Any) -> str | None:
        rows = self._fetch(PARTITION_HOLDING, [qualified(schema, table), value]).to_pylist()
        return rows[0]["name"] if rows else None

    def _partition_by_key(self, schema: str, table: str, key_column: str, value: Any) -> str | None:
        """The partition holding ``value`` when the table is partitioned by ``key_column``, else None."""
        if self._partition_key(schema, table) != key_column:
            return None
        return self._find_partition(schema, table, value)

    def _free_name(self, schemas: Sequence[str], name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... whichever no relation of ``schemas`` has."""
        taken = (
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relname = ?"
        )
        candidate, number = name, 1
        while any(self._fetch(taken, [schema, candidate]).num_rows for schema in schemas):
            number += 1
            candidate = numbered_name(name, number)
        return candidate

    def _literal(self, value: Any) -> str:
        """``value`` as an SQL literal, quoted by Postgres itself (DDL takes no parameters)."""
        return self._fetch("SELECT quote_literal(CAST(? AS TEXT)) AS v", [value]).column("v")[0].as_py()

    def _politely(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()``, a transaction of its own whose DDL needs a strong lock, run so that it never holds up
        others for long: its DDL waits at most DDL_LOCK_WAIT for its locks (``_wait_briefly``), then the
        transaction rolls back and is tried again, for up to ``EDW_LOCK_TIMEOUT_SECONDS``, saying once that
        it waits. (A savepoint would not do: the driver refuses every statement after an error until a
        rollback of the whole transaction.)"""
        if self._in_transaction:
            raise RuntimeError(f"{what} runs in a transaction of its own, not inside transaction()")
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT_SECONDS)
        started, warned = time.monotonic(), False
        while True:
            try:
                result = attempt()
            except Exception as exc:
                if not _lock_timed_out(exc):
                    raise
                self._con.rollback()
                if time.monotonic() - started >= timeout:
                    raise LockTimeout(
                        f"{what} waited over {timeout:.0f} s for the sessions using the table (queries "
                        f"reading all of it, loads) to let go; run it again later, or raise {LOCK_TIMEOUT_ENV}"
                    ) from exc
                if not warned:
                    log.warning(
                        "%s waits for the sessions using the table to let go (up to %.0f s, %s)",
                        what,
                        timeout,
                        LOCK_TIMEOUT_ENV,
                    )
                    warned = True
                time.sleep(random.uniform(0.2, 1.0))
                continue
            if warned:
                log.warning("%s done after %.1f s", what, time.monotonic() - started)
            return result

    def _wait_briefly(self) -> None:
        """From here to the end of the transaction, a statement waits at most DDL_LOCK_WAIT for a lock."""
        self._fetch("SELECT set_config('lock_timeout', ?, true) AS v", [DDL_LOCK_WAIT])

    def partition_of(self, schema: str, table: str, value: Any) -> str | None:
        with self._unit():
            return self._find_partition(schema, table, value)

    def ensure_partition(self, schema: str, table: str, value: Any) -> str | None:
        """The partition holding ``value``; a missing one is created as a table (``<table>__<value>``, see
        ``partition_name``) and attached, under the DDL lock, in a transaction of its own (inside a load's
        transaction the parent's lock would be held, and the next day's partition held up, until it
        commits). Rows of ``value`` that the DEFAULT partition took meanwhile move into it."""
        with self._unit():
            key = self._partition_key(schema, table)
            found = self._find_partition(schema, table, value) if key else None
        if key is None or found:
            return found  # the common case: catalog look-ups, no lock

        def attempt() -> str:
            with self._unit():
                self.lock_ddl()  # then look again: another process may have created it meanwhile
                found = self._find_partition(schema, table, value)
                if found:
                    return found
                name = self._free_name([schema], partition_name(table, value))
                parent, part = qualified(schema, table), qualified(schema, name)
                literal = self._literal(value)
                default = self._fetch(DEFAULT_PARTITION, [parent]).to_pylist()
                columns = ", ".join(quote_ident(c) for c in self._column_types(schema, table))
                self._wait_briefly()
                self._run(
                    f"CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
                )
                if default:
                    self._run(
                        f"WITH moved AS (DELETE FROM {qualified(schema, default[0]['name'])} "
                        f"WHERE {quote_ident(key)} = ? RETURNING {columns}) "
                        f"INSERT INTO {part} ({columns}) SELECT {columns} FROM moved",
                        [value],
                    )
                self._run(f"ALTER TABLE {parent} ATTACH PARTITION {part} FOR VALUES IN ({literal})")
                return name

        return self._politely(f"attaching a partition for {value!r} to {schema}.{table}", attempt)

    def detach_partition(
        self, schema: str, table: str, value: Any, to_schema: str, lock: tuple[str, str] | None = None
    ) -> str | None:
        """Detach the partition holding ``value`` and move it to ``to_schema`` (renamed ``<name>_2``... when
        that schema already has its name), holding the named ``lock`` meanwhile; returns
        ``<to_schema>.<name>``, or None if no partition holds ``value``."""

        def attempt() -> str | None:
            with self.transaction() as tx:
                if lock:
                    tx.lock(*lock)
                self.lock_ddl()
                name = self._find_partition(schema, table, value)
                if name is None:
                    return None
                if not self._fetch("SELECT 1 FROM pg_namespace WHERE nspname = ?", [to_schema]).num_rows:
                    self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(to_schema)}")
                target = self._free_name([to_schema], name)
                if target != name:
                    target = self._free_name([schema, to_schema], target)
                self._wait_briefly()
                self._run(
                    f"ALTER TABLE {qualified(schema, table)} DETACH PARTITION {qualified(schema, name)}"
                )
                if target != name:
                    self._run(f"ALTER TABLE {qualified(schema, name)} RENAME TO {quote_ident(target)}")
                self._run(f"ALTER TABLE {qualified(schema, target)} SET SCHEMA {quote_ident(to_schema)}")
                return f"{to_schema}.{target}"

        if self.partition_of(schema, table, value) is None:
            return None
        return self._politely(f"detaching the partition for {value!r} from {schema}.{table}", attempt)

    def partition_existing(
        self, schema: str, table: str, column: str, keep_schema: str
    ) -> tuple[str, int] | None:
        """Make a plain table partitioned by LIST of ``column``, once, in one transaction: the table moves to
        ``keep_schema`` as ``<table>__unpartitioned`` (kept until a DBA drops it), and a partitioned table
        takes its name, its grants and its rows, with a partition per value it holds and a DEFAULT one, then
        is analysed. Views reading the table (dbt's staging) still read the old one until they are
        recreated. Returns the old table's new name and the partitions made; None when the table is missing
        or already partitioned."""
        parent = qualified(schema, table)

        def attempt() -> tuple[str, int] | None:
            with self._unit():
                self.lock_ddl()
                kind = self._fetch("SELECT relkind AS k FROM pg_class WHERE oid = to_regclass(?)", [parent])
                if kind.num_rows == 0 or kind.column("k")[0].as_py() != "r":
                    return None
                self._wait_briefly()
                self._run(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE")
                if not self._fetch("SELECT 1 FROM pg_namespace WHERE nspname = ?", [keep_schema]).num_rows:
                    self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(keep_schema)}")
                old = self._free_name([schema, keep_schema], partition_name(table, "unpartitioned"))
                kept = qualified(keep_schema, old)
                grants = self._fetch(
                    "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee, "
                    "a.privilege_type AS privilege FROM pg_class AS c, aclexplode(c.relacl) AS a "
                    "WHERE c.oid = to_regclass(?) AND a.grantee <> c.relowner",
                    [parent],
                ).to_pylist()
                self._run(f"ALTER TABLE {parent} RENAME TO {quote_ident(old)}")
                self._run(f"ALTER TABLE {qualified(schema, old)} SET SCHEMA {quote_ident(keep_schema)}")
                self._run(
                    f"CREATE TABLE {parent} (LIKE {kept} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                    f"INCLUDING STORAGE) PARTITION BY LIST ({quote_ident(column)})"
                )
                default = self._free_name([schema], partition_name(table, "default"))
                self._run(f"CREATE TABLE {qualified(schema, default)} PARTITION OF {parent} DEFAULT")
                values = self._fetch(
                    f"SELECT DISTINCT {quote_ident(column)} AS v FROM {kept} WHERE {quote_ident(column)} IS NOT NULL"
                ).column("v")
                for value in values.to_pylist():
                    name = self._free_name([schema], partition_name(table, value))
                    self._run(
                        f"CREATE TABLE {qualified(schema, name)} PARTITION OF {parent} "
                        f"FOR VALUES IN ({self._literal(value)})"
                    )
                for grant in grants:  # the names as Postgres quotes them (regrole), the privilege a keyword
                    self._run(f"GRANT {grant['privilege']} ON {parent} TO {grant['grantee']}")
                columns = ", ".join(quote_ident(c) for c in self._column_types(keep_schema, old))
                self._run(f"INSERT INTO {parent} ({columns}) SELECT {columns} FROM {kept}")
                self._run(f"ANALYZE {parent}")
                return f"{keep_schema}.{old}", len(values)

        return self._politely(f"partitioning {schema}.{table}", attempt)

    def refresh_statistics(self, schema: str, table: str, value: Any) -> str | None:
        """ANALYZE the partition holding ``value``: a load's rows have statistics as soon as it ends (the
        autovacuum daemon analyzes a new partition only a minute or more later, and never a partitioned
        parent: the parent's whole-table statistics come only from a manual ANALYZE of it)."""
        with self._unit():
            name = self._find_partition(schema, table, value)
            if name is not None:
                self._run(f"ANALYZE {qualified(schema, name)}")
            return name

    def ensure_index(self, schema: str, table: str, column: str) -> None:
        """An index on ``column`` (a batch's rows are deleted, replaced and counted by ``_batch_id``: without
        one, each load of a feed would read the whole table three times). None on a table partitioned by
        ``column``: each partition holds one value, and the planner reads only the value's partition."""
        name = f"{table}__{column.strip('_')}_idx"[:63]
        with self._unit():
            if self._partition_key(schema, table) == column:
                return
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
