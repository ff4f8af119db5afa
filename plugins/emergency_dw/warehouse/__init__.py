"""The warehouse: ``connect(url)`` returns a DuckDB or a Postgres backend behind one interface (see base.py).

Conventions shared by both backends:

* SQL passed to ``execute`` / ``query`` uses ``?`` placeholders (DuckDB's own style); the Postgres backend
  translates them to ``$1, $2, ...``. A ``?`` inside a quoted string, quoted identifier or comment is left
  alone; every other ``?`` is a placeholder (so Postgres' jsonb ``?`` operators are not usable: use
  ``jsonb_exists(doc, key)`` instead).
* Values always travel as parameters; identifiers are quoted with :func:`quote_ident`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from emergency_dw.warehouse.base import LOGICAL_TYPES, ColumnSpec, LockTimeout, Transaction, Warehouse

__all__ = [
    "LOGICAL_TYPES",
    "ColumnSpec",
    "LockTimeout",
    "Transaction",
    "Warehouse",
    "connect",
    "partition_name",
    "quote_ident",
]

LOCK_TIMEOUT_ENV = "EDW_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0
log = logging.getLogger(__name__)

ACCEPTED_URLS = "duckdb:///path/to/file.duckdb, duckdb:///:memory:, postgresql://... or postgres://..."


def connect(url: str) -> Warehouse:
    """The warehouse at ``url`` (the value of EDW_WAREHOUSE_URL)."""
    if url.startswith("duckdb:///"):
        from emergency_dw.config import settings
        from emergency_dw.warehouse.duckdb_backend import DuckDBWarehouse

        config = settings()
        path = url.removeprefix("duckdb:///")
        return DuckDBWarehouse(
            path,
            memory_limit=config.duckdb_memory_limit,
            threads=config.duckdb_threads,
        )
    if url.startswith(("postgresql://", "postgres://")):
        from emergency_dw.warehouse.postgres_backend import PostgresWarehouse

        return PostgresWarehouse(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(
        f"unsupported warehouse URL {scheme!r}: set EDW_WAREHOUSE_URL to one of {ACCEPTED_URLS} "
        "(duckdb:////absolute/path.duckdb for an absolute path)"
    )


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (embedded double quotes doubled)."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


class BulkTransaction:
    """The Transaction verbs over a backend's own ``_run`` (SQL with ``?``) and ``_insert`` (bulk Arrow)."""

    def __init__(self, warehouse) -> None:
        self._wh = warehouse

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._wh._run(sql, params)

    def replace_rows(self, schema: str, table: str, key_column: str, key_value: Any, data) -> int:
        self._wh._run(
            f"DELETE FROM {qualified(schema, table)} WHERE {quote_ident(key_column)} = ?", [key_value]
        )
        # a table partitioned by the key: straight into the value's partition (no routing row by row)
        target = self._wh._partition_by_key(schema, table, key_column, key_value)
        return self._wh._insert(schema, target or table, data)

    def append(self, schema: str, table: str, data) -> int:
        return self._wh._insert(schema, table, data)

    def count(self, schema: str, table: str, key_column: str, key_value: Any) -> int:
        return self._wh._count(
            f"SELECT count(*) AS n FROM {qualified(schema, table)} WHERE {quote_ident(key_column)} = ?",
            [key_value],
        )

    def lock(self, key: str, what: str) -> None:
        """Wait for the named lock (the backend's ``_try_lock``): see ``wait_for_lock``."""
        wait_for_lock(lambda: self._wh._try_lock(key), what)


def wait_for_lock(try_once: Callable[[], str | None], what: str, held: str = "is held by") -> None:
    """Call ``try_once`` (None: the lock is taken; else who holds it) until it takes the lock, saying once
    who holds it ("<what> <held> <holder>: waiting for it"); give up after ``EDW_LOCK_TIMEOUT_SECONDS``
    (default 600) with ``LockTimeout`` naming ``what``, its holder and the way out."""
    timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT_SECONDS)
    started = time.monotonic()
    warned = False
    while True:
        holder = try_once()
        if holder is None:
            if warned:
                log.warning("%s is free again after %.1f s", what, time.monotonic() - started)
            return
        if time.monotonic() - started >= timeout:
            raise LockTimeout(
                f"{what} {held} {holder} for over {timeout:.0f} s; wait for it to finish (or stop it), then "
                f"run again, or raise {LOCK_TIMEOUT_ENV}"
            )
        if not warned:
            log.warning(
                "%s %s %s: waiting for it (up to %.0f s, %s)", what, held, holder, timeout, LOCK_TIMEOUT_ENV
            )
            warned = True
        time.sleep(0.1)


MAX_IDENTIFIER_BYTES = 63  # Postgres truncates longer names


def partition_name(table: str, value: Any) -> str:
    """A readable name for the partition of ``table`` holding ``value``: ``<table>__<value>`` with the value in
    lower-case letters, digits and underscores, and without a leading ``<table>:`` it repeats
    (``power_load_readings:2026-11-27`` -> ``power_load_readings__2026_11_27``). A name over 63 bytes keeps
    its head and ends with a hash of the value. Two values may share a name: the backend looks partitions
    up by the values they hold, never by name, and picks a free name when creating one."""
    text = str(value)
    if text.startswith(f"{table}:"):
        text = text[len(table) + 1 :]
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    name = f"{table}__{slug}" if slug else f"{table}__"
    if len(name.encode()) > MAX_IDENTIFIER_BYTES or not slug:
        digest = hashlib.sha256(str(value).encode()).hexdigest()[:10]
        head = name.encode()[: MAX_IDENTIFIER_BYTES - len(digest) - 1].decode("utf-8", "ignore")
        name = f"{head}_{digest}"
    return name


def numbered_name(name: str, number: int) -> str:
    """``name`` with ``_<number>`` at its end, within 63 bytes (for a name already taken)."""
    suffix = f"_{number}"
    return name.encode()[: MAX_IDENTIFIER_BYTES - len(suffix)].decode("utf-8", "ignore") + suffix


def table_ddl(
    schema: str,
    table: str,
    columns: Sequence[ColumnSpec],
    primary_key: Sequence[str],
    sql_types: dict[str, str],
    partition_by: str | None = None,
) -> str:
    """CREATE TABLE for the specs in a backend's types (``PARTITION BY LIST`` of a column, where asked)."""
    defs = [f"{quote_ident(c.name)} {sql_types[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in columns]
    if primary_key:
        defs.append(f"PRIMARY KEY ({', '.join(quote_ident(name) for name in primary_key)})")
    partitioned = f" PARTITION BY LIST ({quote_ident(partition_by)})" if partition_by else ""
    return f"CREATE TABLE {qualified(schema, table)} ({', '.join(defs)}){partitioned}"


def add_column_ddl(schema: str, table: str, column: ColumnSpec, sql_types: dict[str, str]) -> str:
    """ALTER TABLE ... ADD COLUMN (always nullable: the table may already hold rows)."""
    return f"ALTER TABLE {qualified(schema, table)} ADD COLUMN {quote_ident(column.name)} {sql_types[column.type]}"


def check_specs(
    columns: Sequence[ColumnSpec], primary_key: Sequence[str], partition_by: str | None = None
) -> None:
    for col in columns:
        if col.type not in LOGICAL_TYPES:
            raise ValueError(f"column {col.name!r}: unknown type {col.type!r} (one of {LOGICAL_TYPES})")
    missing = set(primary_key) - {col.name for col in columns}
    if missing:
        raise ValueError(f"primary key columns not among the columns: {sorted(missing)}")
    if partition_by is not None and partition_by not in {col.name for col in columns}:
        raise ValueError(f"partition column {partition_by!r} is not among the columns")


def check_data_columns(
    schema: str, table: str, data_columns: Iterable[str], table_columns: Iterable[str]
) -> None:
    known = set(table_columns)
    if not known:
        raise ValueError(f"table {schema}.{table} does not exist (call ensure_table first)")
    unknown = [name for name in data_columns if name not in known]
    if unknown:
        raise ValueError(f"columns not in {schema}.{table}: {unknown} (call ensure_table first)")
