"""The DuckDB warehouse: one connection, Arrow tables inserted BY NAME through a registered view.

JSON and ICU (time zones) are statically linked into duckdb 2.0.1: nothing is installed or downloaded.

A DuckDB file accepts one process at a time (any number of connections inside it). When another process
holds the file (a load of another feed under Airflow's LocalExecutor, a dbt build, a BI tool with it
open), connecting waits for it, up to ``EDW_DUCKDB_LOCK_TIMEOUT_SECONDS`` (default 600), and says so in
the log; after that it fails naming the file, the process holding it and what to do. Loads on the
embedded warehouse therefore run one after another; Postgres runs them side by side.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import re
import threading
import time
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


LOCK_TIMEOUT_ENV = "EDW_DUCKDB_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0
WAIT_NOTICE_SECONDS = 2.0  # a shorter wait is batches taking turns, not news
log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the lock timeout."""


def _holder(message: str) -> str:
    """Who holds the file, as DuckDB's lock error names it (``/usr/bin/python3.11 (PID 123)``)."""
    found = re.search(r"held in (.+?\(PID \d+\))", message)
    return found.group(1) if found else "another process"


def _connect_one_at_a_time(path: str) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)`` while holding an OS lock on ``<path>.open-lock``.

    DuckDB creates a new file first and writes its header after: a process opening the file in between
    finds "not a valid DuckDB database file". With opening serialised, a second process finds either no
    file or a whole one (and then DuckDB's own lock, which the caller waits for). The lock is held only
    while connecting, never while the connection is used.
    """
    directory = os.path.dirname(path) or "."
    if path == ":memory:" or not os.path.isdir(directory):
        return duckdb.connect(path)
    with open(f"{path}.open-lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            return duckdb.connect(path)
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


def connect_waiting(path: str, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)``, waiting while another process holds the file's lock."""
    if timeout is None:
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT_SECONDS)
    started = time.monotonic()
    warned = False
    while True:
        try:
            con = _connect_one_at_a_time(path)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            holder = _holder(str(exc))
            waited = time.monotonic() - started
            if waited >= timeout:
                raise WarehouseBusy(
                    f"the embedded warehouse {path} has been in use by {holder} for over {timeout:.0f} s; "
                    "DuckDB lets one process use a file at a time. Wait for that process to finish (or close "
                    f"it), raise {LOCK_TIMEOUT_ENV}, or put the warehouse on Postgres "
                    "(EDW_WAREHOUSE_URL=postgresql://...) to load feeds side by side"
                ) from exc
            # batches loading side by side take turns for moments; only a long wait is worth a word
            if not warned and waited >= min(WAIT_NOTICE_SECONDS, timeout / 2):
                log.warning(
                    "the embedded warehouse %s is in use by %s; DuckDB lets one process use a file at a "
                    "time: waiting for it (up to %.0f s, %s)",
                    path,
                    holder,
                    timeout,
                    LOCK_TIMEOUT_ENV,
                )
                warned = True
            time.sleep(random.uniform(0.05, 0.25))
            continue
        if warned:
            log.warning(
                "the embedded warehouse %s is free again after %.1f s", path, time.monotonic() - started
            )
        return con


def _setting_text(value: str) -> str:
    """A setting's value inside single quotes (SET takes no parameters)."""
    return value.replace("'", "''")


_MEMORY_LOCKS: dict[str, threading.Lock] = {}
_LOCK_TYPE = type(threading.Lock())

DuckDBTransaction = BulkTransaction  # the verbs are the same; only _run and _insert differ


class DuckDBWarehouse:
    dialect = "duckdb"

    def __init__(
        self,
        path: str | Path,
        memory_limit: str | None = None,
        threads: int = 0,
    ) -> None:
        """``memory_limit`` (e.g. '1GB') and ``threads`` (0: every core) bound the database; None leaves
        DuckDB's defaults. What does not fit spills to DuckDB's own ``<file>.tmp`` folder (its temp
        directory is not set here: DuckDB refuses to set it again, even to the same value, once one
        connection of the process has spilled, and dbt's connection shares the database)."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._con = connect_waiting(path) if path != ":memory:" else duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
        try:
            if memory_limit:
                self._con.execute(f"SET memory_limit = '{_setting_text(memory_limit)}'")
            if threads:
                self._con.execute(f"SET threads = {int(threads)}")
        except duckdb.Error as exc:
            self._con.close()
            raise ValueError(
                f"DuckDB refused the settings memory_limit={memory_limit!r}, threads={threads!r}: {exc} (set EDW_DUCKDB_MEMORY_LIMIT like '1GB' and "
                "EDW_DUCKDB_THREADS to a whole number)"
            ) from exc
        self._in_transaction = False
        self._locks: list = []  # the named locks this transaction holds ((file, path), or threading locks in memory)

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

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._run(sql, params)[0][0])

    def _try_lock(self, key: str) -> str | None:
        """Take the lock named ``key`` until the transaction ends: an OS lock on a file in
        ``<warehouse>.locks/`` (so threads of one process and processes exclude each other alike); None
        when taken, else who holds it. An in-memory warehouse uses a lock of this process."""
        if self.path == ":memory:":
            lock = _MEMORY_LOCKS.setdefault(key, threading.Lock())
            if not lock.acquire(blocking=False):
                return "another thread of this process"
            self._locks.append(lock)
            return None
        folder = Path(f"{self.path}.locks")
        folder.mkdir(exist_ok=True)
        path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.lock"
        while True:
            handle = open(path, "a+")  # noqa: SIM115 - held until the transaction ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                return holder
            # its last holder removes the file as it lets go (the folder keeps no file per batch ever
            # loaded): a file opened before that is no lock any more; take the one at the path now
            try:
                current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} ({key})")
        handle.flush()
        self._locks.append((handle, path))
        return None

    def _release_locks(self) -> None:
        for lock in self._locks:
            if isinstance(lock, _LOCK_TYPE):
                lock.release()
            else:
                handle, path = lock
                path.unlink(missing_ok=True)  # while still held: a waiter then opens a new file
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
        self._locks = []

    def ensure_schema(self, schema: str) -> None:
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
        ``partition_by`` is checked and otherwise ignored: DuckDB has no partitions (its zone maps skip
        other batches' row groups)."""
        check_specs(columns, primary_key, partition_by)
        existing = self._columns(schema, table)
        if not existing:
            self._run(table_ddl(schema, table, columns, primary_key, SQL_TYPES))
            return []
        added = [c for c in columns if c.name not in existing]
        for col in added:
            self._run(add_column_ddl(schema, table, col, SQL_TYPES))
        return [col.name for col in added]

    def ensure_partition(self, schema: str, table: str, value: Any) -> str | None:
        return None

    def partition_of(self, schema: str, table: str, value: Any) -> str | None:
        return None

    def refresh_statistics(self, schema: str, table: str, value: Any) -> str | None:
        return None

    def partition_existing(
        self, schema: str, table: str, column: str, keep_schema: str
    ) -> tuple[str, int] | None:
        return None

    def _partition_by_key(self, schema: str, table: str, key_column: str, value: Any) -> str | None:
        return None

    def detach_partition(
        self, schema: str, table: str, value: Any, to_schema: str, lock: tuple[str, str] | None = None
    ) -> str | None:
        return None

    def ensure_index(self, schema: str, table: str, column: str) -> None:
        """Nothing: DuckDB's per-block min/max (zone maps) already skip other batches' rows, and an ART
        index would slow every bulk insert."""

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
            self._release_locks()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        relation = self._con.sql(sql, params=list(params) or None)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def close(self) -> None:
        self._con.close()
