"""On Postgres the big raw tables are partitioned by batch: each day of power readings loads into a
partition of its own, a rerun of a day deletes and rewrites only that partition (the planner prunes the
others), the partition has statistics as soon as its load ends, and `edw retention` detaches the partitions
of old batches into raw_detached. DuckDB has no partitions and nothing to detach.

Before: raw.power_load_readings was one table with an index on _batch_id; a rerun of a day deleted through
the index among every day's rows, and nothing ever left the table."""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from emergency_dw.catalog import all_feeds, get_feed
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.simulator.run import Simulator
from emergency_dw.warehouse import partition_name

from databases import create_database, drop_database, postgres_url

FEED = "power_load_readings"
DAYS = [dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
SCALE = 0.005
PARENT = f"raw.{FEED}"


def _partition(day: dt.date) -> str:
    return f"raw.{partition_name(FEED, f'{FEED}:{day.isoformat()}')}"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    """Two days of power readings ingested into a fresh Postgres warehouse."""
    root = tmp_path_factory.mktemp("partitions") / "data"
    database = create_database("edw_test_partitions")
    url = postgres_url(database)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root))
            mp.setenv("EDW_WAREHOUSE_URL", url)
            simulator = Simulator(root / "sources", scale=SCALE)
            for day in DAYS:
                simulator.simulate_day(day, feeds=[FEED])
            with embedded_sources():
                results = {day: ingest(FEED, *day_interval(day), url) for day in DAYS}
            yield {"url": url, "root": root, "results": results}
    finally:
        drop_database(database)


def _sql(url: str, sql: str, params: list | tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def _per_partition(url: str) -> dict[str, dict[str, int]]:
    rows = _sql(url, f"select tableoid::regclass::text, _batch_id, count(*) from {PARENT} group by 1, 2")
    out: dict[str, dict[str, int]] = {}
    for part, batch, n in rows:
        out.setdefault(part, {})[batch] = n
    return out


def test_the_big_feeds_are_declared_partitioned_in_the_catalog():
    assert {f.name for f in all_feeds() if f.partitioned} == {
        "power_load_readings",
        "cable_temperature_readings",
        "rescuer_positions",
        "fishing_vessel_positions",
    }
    assert get_feed(FEED).to_dict()["partitioned"] is True


@pytest.mark.postgres
def test_each_batch_loads_into_a_partition_of_its_own(loaded):
    url, results = loaded["url"], loaded["results"]
    assert _sql(url, f"select relkind from pg_class where oid = '{PARENT}'::regclass") == [("p",)]
    expected = {_partition(day): {result.batch_id: result.rows_loaded} for day, result in results.items()}
    assert all(r.rows_loaded > 0 for r in results.values())
    assert _per_partition(url) == expected
    assert _partition(DAYS[0]) == "raw.power_load_readings__2026_11_25"
    # a DEFAULT partition catches what has no partition of its own: nothing here
    [(default,)] = _sql(
        url,
        "select c.oid::regclass::text from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        f"where i.inhparent = '{PARENT}'::regclass and pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'",
    )
    assert default == "raw.power_load_readings__default"
    assert _sql(url, f"select count(*) from {default}") == [(0,)]
    # no index on _batch_id (each partition holds one batch); the reading time and the load time are
    # indexed on the parent and so on every partition: a build reads the days it rebuilds and what was loaded
    # since the last one, not every day ever loaded
    indexed = _sql(
        url,
        "select tablename, indexdef from pg_indexes where schemaname = 'raw' and tablename like 'power%'",
    )
    columns: dict[str, set[str]] = {}
    for table, definition in indexed:
        columns.setdefault(table, set()).add(definition.rsplit("(", 1)[1].rstrip(")"))
    tables = {PARENT.removeprefix("raw."), *(_partition(day).removeprefix("raw.") for day in DAYS)}
    assert tables <= set(columns), columns
    assert all(found == {"reading_at", "_loaded_at"} for found in columns.values()), columns
    # the quarantine table is as before: one table, indexed by batch
    assert _sql(
        url, "select relkind from pg_class where oid = 'quarantine.power_load_readings'::regclass"
    ) == [("r",)]
    # every batch reconciles, counted by the database
    for result in results.values():
        [(extracted, loaded_, quarantined)] = _sql(
            url,
            "select rows_extracted, rows_loaded, rows_quarantined from audit.batches where batch_id = %s",
            [result.batch_id],
        )
        assert extracted == loaded_ + quarantined and loaded_ == result.rows_loaded


@pytest.mark.postgres
def test_a_partition_has_statistics_as_soon_as_its_load_ends(loaded):
    url = loaded["url"]
    for day, result in loaded["results"].items():
        [(reltuples, analyzed)] = _sql(
            url,
            "select c.reltuples, s.last_analyze is not null or s.last_autoanalyze is not null "
            "from pg_class c left join pg_stat_user_tables s on s.relid = c.oid where c.oid = %s::regclass",
            [_partition(day)],
        )
        assert reltuples == result.rows_loaded > 0
        assert analyzed
        assert _sql(
            url,
            "select count(*) > 0 from pg_stats where schemaname = 'raw' and tablename = %s",
            [_partition(day).split(".")[1]],
        ) == [(True,)]


@pytest.mark.postgres
def test_deleting_or_counting_a_batch_reads_only_its_partition(loaded):
    url = loaded["url"]
    batch = loaded["results"][DAYS[0]].batch_id
    for statement in (
        f"explain delete from {PARENT} where _batch_id = %s",
        f"explain select count(*) from {PARENT} where _batch_id = %s",
    ):
        plan = "\n".join(row[0] for row in _sql(url, statement, [batch]))
        assert "power_load_readings__2026_11_25" in plan, plan
        assert "power_load_readings__2026_11_26" not in plan, plan
        assert "power_load_readings__default" not in plan, plan
    # the load's own path (the warehouse's driver, its parameters): only the batch's partition is touched
    from emergency_dw.warehouse import connect

    class Undo(Exception):
        pass

    warehouse = connect(url)
    try:
        with pytest.raises(Undo), warehouse.transaction() as tx:
            tx.execute(f"delete from {PARENT} where _batch_id = ?", [batch])
            assert tx.count("raw", FEED, "_batch_id", batch) == 0
            locked = warehouse.query(
                "select relation::regclass::text as r from pg_locks "
                "where pid = pg_backend_pid() and locktype = 'relation'"
            ).column("r")
            raw = {r for r in locked.to_pylist() if r.startswith("raw.")}
            indexes = {r for r in raw if r.endswith("_idx")}  # the batch's partition's own, and nothing else
            assert raw - indexes == {PARENT, _partition(DAYS[0])}, raw
            assert all(index.startswith(_partition(DAYS[0]) + "_") for index in indexes), raw
            raise Undo  # roll back: the other tests read the batch
    finally:
        warehouse.close()
    assert _sql(url, f"select count(*) > 0 from {PARENT} where _batch_id = %s", [batch]) == [(True,)]


@pytest.mark.postgres
def test_a_rerun_of_one_day_rewrites_only_its_partition(loaded):
    url, results = loaded["url"], loaded["results"]
    first, other = DAYS
    untouched = f"select count(*), min(xmin::text::bigint), max(xmin::text::bigint), max(_loaded_at) from {_partition(other)}"
    before = _sql(url, untouched)
    loaded_at = _sql(url, f"select max(_loaded_at) from {_partition(first)}")
    with embedded_sources():
        again = ingest(FEED, *day_interval(first), url)
    assert again.batch_id == results[first].batch_id and again.rows_loaded == results[first].rows_loaded
    assert _sql(url, untouched) == before, "the other day's partition is as it was"
    assert _sql(url, f"select max(_loaded_at) from {_partition(first)}") != loaded_at, (
        "the rerun day reloaded"
    )
    assert _per_partition(url) == {
        _partition(day): {result.batch_id: result.rows_loaded} for day, result in results.items()
    }
    [(rows, distinct)] = _sql(
        url,
        f"select count(*), count(distinct (meter_id, reading_at)) from {PARENT} where _batch_id = %s",
        [again.batch_id],
    )
    assert rows == distinct == again.rows_loaded, "each reading once"


def _edw(url: str, root: Path, *args: str, retention: str | None = None) -> subprocess.CompletedProcess:
    """`edw ARGS` for real, on the warehouse ``url``, with EDW_RAW_RETENTION_DAYS as given (unset: None)."""
    environment = {k: v for k, v in os.environ.items() if k != "EDW_RAW_RETENTION_DAYS"}
    environment.update(EDW_DATA_DIR=str(root), EDW_WAREHOUSE_URL=url)
    if retention is not None:
        environment["EDW_RAW_RETENTION_DAYS"] = retention
    return subprocess.run(
        [sys.executable, "-m", "emergency_dw.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _days_keeping_only_the_second_day() -> int:
    """N such that the first day's interval ended more than N days ago and the second's within N days."""
    end = day_interval(DAYS[1])[1]
    return math.ceil((dt.datetime.now(dt.UTC) - end).total_seconds() / 86_400)


@pytest.mark.postgres
def test_edw_retention_detaches_the_old_days_partition_into_raw_detached(loaded):
    """Runs last: it takes the first day out of raw."""
    url, root, results = loaded["url"], loaded["root"], loaded["results"]
    old, new = (results[day] for day in DAYS)
    days = _days_keeping_only_the_second_day()

    unset = _edw(url, root, "retention")
    assert unset.returncode == 0 and "EDW_RAW_RETENTION_DAYS is unset" in unset.stdout

    dry = _edw(url, root, "retention", "--dry-run", retention=str(days))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert old.batch_id in dry.stdout and new.batch_id not in dry.stdout and "Dry run" in dry.stdout
    assert _partition(DAYS[0]) in dry.stdout
    assert set(_per_partition(url)) == {_partition(DAYS[0]), _partition(DAYS[1])}, "a dry run changes nothing"

    done = _edw(url, root, "retention", "--days", str(days))
    assert done.returncode == 0, done.stdout + done.stderr
    detached = f"raw_detached.{partition_name(FEED, old.batch_id)}"
    assert old.batch_id in done.stdout and detached in done.stdout and "Detached 1 partition" in done.stdout
    assert _per_partition(url) == {_partition(DAYS[1]): {new.batch_id: new.rows_loaded}}
    assert _sql(url, f"select _batch_id, count(*) from {detached} group by 1") == [
        (old.batch_id, old.rows_loaded)
    ], "detached, not dropped"
    lake = list((root / "lake" / "raw" / FEED / f"dt={DAYS[0].isoformat()}").glob("*.parquet"))
    assert lake, "the lake keeps the detached day"
    [(status,)] = _sql(url, "select status from audit.batches where batch_id = %s", [old.batch_id])
    assert status == "loaded"

    again = _edw(url, root, "retention", "--days", str(days))
    assert again.returncode == 0 and "nothing to detach" in again.stdout

    # a backfill of the detached day loads it again, into a new partition of raw
    with embedded_sources():
        reloaded = ingest(FEED, *day_interval(DAYS[0]), url)
    assert _per_partition(url) == {
        _partition(DAYS[0]): {old.batch_id: reloaded.rows_loaded},
        _partition(DAYS[1]): {new.batch_id: new.rows_loaded},
    }


def test_edw_retention_on_duckdb_has_nothing_to_do(tmp_path: Path):
    url = f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    done = _edw(url, tmp_path / "data", "retention", "--days", "1")
    assert done.returncode == 0 and "nothing to detach" in done.stdout
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()


@pytest.mark.postgres
def test_a_raw_table_created_unpartitioned_keeps_working_and_is_partitioned_once_by_edw_retention_migrate(
    tmp_path: Path,
):
    """A warehouse from before partitions: its raw.power_load_readings stays a plain table and loads as
    before; `edw retention` skips it and says how to migrate; `edw retention --migrate` partitions it by
    batch with its rows and grants, keeping the old table in raw_detached; the next day loads into its own
    partition."""
    from emergency_dw.pipeline.tables import RAW, raw_columns
    from emergency_dw.warehouse import connect

    root = tmp_path / "data"
    database = create_database("edw_test_partition_migrate")
    url = postgres_url(database)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root))
            mp.setenv("EDW_WAREHOUSE_URL", url)
            simulator = Simulator(root / "sources", scale=SCALE)
            for day in DAYS:
                simulator.simulate_day(day, feeds=[FEED])
            warehouse = connect(url)
            warehouse.ensure_schema(RAW)
            warehouse.ensure_table(RAW, FEED, raw_columns(get_feed(FEED)))  # as an older version made it
            warehouse.close()
            with embedded_sources():
                first = ingest(FEED, *day_interval(DAYS[0]), url)
            assert _sql(url, f"select relkind from pg_class where oid = '{PARENT}'::regclass") == [("r",)]
            assert _sql(url, f"select count(*) from {PARENT}") == [(first.rows_loaded,)]
            _sql(url, f"grant select on {PARENT} to public")

            skipped = _edw(url, root, "retention", "--days", "1")
            assert skipped.returncode == 0 and "edw retention --migrate" in skipped.stdout, skipped.stdout

            migrated = _edw(url, root, "retention", "--migrate")
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            kept = "raw_detached.power_load_readings__unpartitioned"
            assert (
                "1 partition(s)" in migrated.stdout
                and kept in migrated.stdout
                and "edw build" in migrated.stdout
            )
            assert _sql(url, f"select relkind from pg_class where oid = '{PARENT}'::regclass") == [("p",)]
            assert _per_partition(url) == {_partition(DAYS[0]): {first.batch_id: first.rows_loaded}}
            assert _sql(url, f"select count(*) from {kept}") == [(first.rows_loaded,)]
            [(acl,)] = _sql(url, f"select relacl::text from pg_class where oid = '{PARENT}'::regclass")
            assert "=r/" in acl, "the grants follow the table"

            with embedded_sources():
                second = ingest(FEED, *day_interval(DAYS[1]), url)
            assert _per_partition(url) == {
                _partition(DAYS[0]): {first.batch_id: first.rows_loaded},
                _partition(DAYS[1]): {second.batch_id: second.rows_loaded},
            }
            again = _edw(url, root, "retention", "--migrate")
            assert again.returncode == 0 and "nothing to migrate" in again.stdout
    finally:
        drop_database(database)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_days_of_two_partitioned_feeds_load_at_once_into_a_fresh_warehouse(tmp_path: Path):
    """Four processes (power and cable readings, two days each) reach a fresh warehouse at the same moment:
    they create the tables and their four partitions side by side, and each batch lands whole in its own."""
    import multiprocessing

    from reliability import load_after_barrier

    feeds = [FEED, "cable_temperature_readings"]
    jobs = [(feed, day) for feed in feeds for day in DAYS]
    root = tmp_path / "data"
    database = create_database("edw_test_partition_concurrent")
    url = postgres_url(database)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root))
            mp.setenv("EDW_WAREHOUSE_URL", url)
            simulator = Simulator(root / "sources", scale=SCALE)
            for day in DAYS:
                simulator.simulate_day(day, feeds=feeds)
            context = multiprocessing.get_context("spawn")
            with embedded_sources() as env, context.Manager() as manager:
                barrier = manager.Barrier(len(jobs))
                env = {**env, "EDW_DATA_DIR": str(root), "EDW_WAREHOUSE_URL": url}
                work = [{"feed": f, "day": d.isoformat(), "env": env, "barrier": barrier} for f, d in jobs]
                with context.Pool(len(jobs)) as pool:
                    outcomes = pool.map(load_after_barrier, work)
        assert [o["error"] for o in outcomes] == [None] * len(jobs), outcomes
        batches = {
            batch: (loaded_, feed)
            for batch, loaded_, feed in _sql(url, "select batch_id, rows_loaded, feed from audit.batches")
        }
        assert sorted(batches) == sorted(f"{f}:{d}" for f, d in jobs)
        for feed in feeds:
            rows = _sql(
                url, f"select tableoid::regclass::text, _batch_id, count(*) from raw.{feed} group by 1, 2"
            )
            assert sorted(rows) == sorted(
                (f"raw.{partition_name(feed, batch)}", batch, n)
                for batch, (n, f) in batches.items()
                if f == feed
            )
    finally:
        drop_database(database)


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
