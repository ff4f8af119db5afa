"""On Postgres the big raw tables are partitioned by batch: each day of power readings loads into a
partition of its own, a rerun of a day deletes and rewrites only that partition (the planner prunes the
others), the partition has statistics as soon as its load ends, and `edw retention` detaches the partitions
of old batches into raw_detached. DuckDB has no partitions and nothing to detach.

Before: raw.power_load_readings was one table with an index on _batch_id; a rerun of a day deleted through
the index among every day's rows, and nothing ever left the table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from emergency_dw.warehouse import partition_name

from databases import create_database, drop_database, postgres_url

FEED = "power_load_readings"


def _sql(url: str, sql: str, params: list | tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


# ---------------------------------------------------------------- the backend's partitions
def test_partition_names_are_readable_and_fit_postgres():
    assert partition_name(FEED, f"{FEED}:2026-11-27") == "power_load_readings__2026_11_27"
    assert (
        partition_name(FEED, f"{FEED}:file:3fa2b1c4d5e6f708") == "power_load_readings__file_3fa2b1c4d5e6f708"
    )
    long = partition_name("t" * 60, "x" * 80)
    assert len(long.encode()) <= 63 and long != partition_name("t" * 60, "x" * 81)
    odd = partition_name("表", "x'; drop table raw.t; --")
    assert len(odd.encode()) <= 63 and odd.startswith("表__x_drop_table_raw_t")


@pytest.fixture
def backend(tmp_path: Path):
    from emergency_dw.warehouse import ColumnSpec, connect

    database = create_database("edw_test_partition_backend")
    warehouse = connect(postgres_url(database))
    warehouse.ensure_schema("s")
    columns = [ColumnSpec("batch", "string", nullable=False), ColumnSpec("v", "integer")]
    warehouse.ensure_table("s", "t", columns, partition_by="batch")
    try:
        yield warehouse, postgres_url(database)
    finally:
        warehouse.close()
        drop_database(database)


def _rows(values: list[str]):
    import pyarrow as pa

    return pa.table({"batch": values, "v": list(range(len(values)))})


@pytest.mark.postgres
def test_values_that_share_a_name_or_hold_quotes_get_partitions_of_their_own(backend):
    warehouse, url = backend
    values = ["t:2026-11-27", "t:2026_11_27", "t:x'); drop table s.t; --"]
    names = [warehouse.ensure_partition("s", "t", v) for v in values]
    assert names[:2] == ["t__2026_11_27", "t__2026_11_27_2"] and len(set(names)) == 3
    assert [warehouse.ensure_partition("s", "t", v) for v in values] == names, "found again by value"
    for value in values:
        with warehouse.transaction() as tx:
            tx.replace_rows("s", "t", "batch", value, _rows([value] * 2))
    rows = _sql(url, "select tableoid::regclass::text, batch, count(*) from s.t group by 1, 2 order by 2")
    assert sorted(rows) == sorted((f"s.{n}", v, 2) for n, v in zip(names, values, strict=True))


@pytest.mark.postgres
def test_rows_in_the_default_partition_move_into_their_partition_when_it_is_made(backend):
    warehouse, url = backend
    with warehouse.transaction() as tx:  # no partition yet: the DEFAULT one takes them
        tx.replace_rows("s", "t", "batch", "late", _rows(["late"] * 3))
    assert _sql(url, "select tableoid::regclass::text, count(*) from s.t group by 1") == [("s.t__default", 3)]
    assert warehouse.ensure_partition("s", "t", "late") == "t__late"
    assert _sql(url, "select tableoid::regclass::text, count(*) from s.t group by 1") == [("s.t__late", 3)]


@pytest.mark.postgres
def test_a_new_partition_waits_for_a_query_reading_the_whole_table_without_holding_it_up(
    backend, monkeypatch
):
    """Attaching a partition locks the DEFAULT partition: while a query reads the whole table (a build), the
    attach gives way every 2 s and tries again, so later readers wait at most that long instead of queueing
    behind it until the query ends; it gives up after the lock timeout, saying so."""
    import threading
    import time

    from emergency_dw.warehouse import LockTimeout

    warehouse, url = backend
    monkeypatch.setenv("EDW_LOCK_TIMEOUT_SECONDS", "6")
    outcome: dict = {}

    def attach() -> None:
        try:
            outcome["name"] = warehouse.ensure_partition("s", "t", "blocked")
        except LockTimeout as exc:
            outcome["error"] = str(exc)

    with psycopg.connect(url) as build:
        build.execute("select count(*) from s.t")  # the build's query, its transaction still open
        waiting = threading.Thread(target=attach)
        waiting.start()
        time.sleep(0.5)
        with psycopg.connect(url) as reader:  # a later reader is not held up behind the waiting attach
            reader.execute("set lock_timeout = '3s'")
            assert reader.execute("select count(*) from s.t").fetchone() == (0,)
        waiting.join(timeout=30)
        assert "waited over 6 s" in outcome.get("error", ""), outcome
        assert warehouse.partition_of("s", "t", "blocked") is None

        monkeypatch.setenv("EDW_LOCK_TIMEOUT_SECONDS", "60")
        threading.Timer(2, build.commit).start()  # the build's query ends: the attach goes through
        assert warehouse.ensure_partition("s", "t", "blocked") == "t__blocked"
