"""Concurrent loads do not interfere: two feeds' batches and two days of one feed, each in its own
process, loading into one warehouse at the same moment, leave it exactly as the same batches loaded one
after another do, and every batch reconciles. On Postgres they run side by side; on the embedded DuckDB
file (one writing process at a time) a load waits for the file's lock and says so.

Airflow's own executors running such batches at once (LocalExecutor and Celery on the local Redis) are in
test_reliability_airflow.py."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
from pathlib import Path

import pytest

from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.simulator.run import Simulator

from conftest import RELIABILITY
from reliability import (
    assert_same_rows,
    create_database,
    drop_database,
    load_after_barrier,
    postgres_url,
    warehouse_rows,
    without_history_context,
)

pytestmark = pytest.mark.timeout(300)

SCALE = 0.01
DAYS = [dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
FEEDS = ["alerts_110", "boiler_inventory"]  # an HTTP API and a file drop
# two feeds of one day, and two days of one feed, all at once
JOBS = [(feed, day) for feed in FEEDS for day in DAYS]
TABLES = [
    *[(schema, feed) for feed in FEEDS for schema in ("raw", "quarantine")],
    ("audit", "batches"),
    ("audit", "validation_results"),
    ("audit", "watermarks"),
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("concurrency-sim") / "sources"
    simulator = Simulator(root, scale=SCALE)
    for day in DAYS:
        simulator.simulate_day(day, feeds=FEEDS)
    return root


def _fresh(root: Path, sources: Path) -> Path:
    """``root`` as a new data directory holding a copy of the sources (file drops move as they load)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(sources, root / "sources")
    return root


def _sequential(root: Path, url: str, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("EDW_DATA_DIR", str(root))
    mp.setenv("EDW_WAREHOUSE_URL", url)
    with embedded_sources():
        for feed, day in JOBS:
            ingest(feed, *day_interval(day))


def _concurrent(root: Path, url: str, mp: pytest.MonkeyPatch, extra_env: dict | None = None) -> list[dict]:
    """Each job in its own process; all of them reach the warehouse at the same moment."""
    mp.setenv("EDW_DATA_DIR", str(root))
    mp.setenv("EDW_WAREHOUSE_URL", url)
    context = multiprocessing.get_context("spawn")
    with embedded_sources() as env, context.Manager() as manager:
        barrier = manager.Barrier(len(JOBS))
        env = {**env, "EDW_DATA_DIR": str(root), "EDW_WAREHOUSE_URL": url, **(extra_env or {})}
        jobs = [{"feed": f, "day": d.isoformat(), "env": env, "barrier": barrier} for f, d in JOBS]
        with context.Pool(len(JOBS)) as pool:
            return pool.map(load_after_barrier, jobs)


def _reconciles(url: str) -> list[dict]:
    from emergency_dw.warehouse import connect

    warehouse = connect(url)
    try:
        return warehouse.query(
            "select batch_id, status, rows_extracted, rows_loaded, rows_quarantined, rows_rejected "
            "from audit.batches order by batch_id"
        ).to_pylist()
    finally:
        warehouse.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_loads_on_postgres_equal_sequential_loads(sources: Path, tmp_path: Path):
    """Four processes (alerts_110 and boiler_inventory, two days each) load into one Postgres warehouse
    at once; the warehouse ends exactly as after the same four batches one after another."""
    databases = [create_database("edw_test_conc_seq"), create_database("edw_test_conc_par")]
    root = tmp_path / "data"  # both runs use this path, so lake paths and file names agree
    try:
        with pytest.MonkeyPatch.context() as mp:
            _sequential(_fresh(root, sources), postgres_url(databases[0]), mp)
        expected = warehouse_rows(postgres_url(databases[0]), TABLES)
        root.rename(tmp_path / "data-sequential")
        with pytest.MonkeyPatch.context() as mp:
            outcomes = _concurrent(_fresh(root, sources), postgres_url(databases[1]), mp)
        assert [o["error"] for o in outcomes] == [None] * len(JOBS), outcomes
        assert sorted(o["batch_id"] for o in outcomes) == sorted(f"{f}:{d}" for f, d in JOBS)
        batches = _reconciles(postgres_url(databases[1]))
        assert len(batches) == len(JOBS) and all(b["status"] == "loaded" for b in batches)
        for b in batches:
            assert b["rows_extracted"] == b["rows_loaded"] + b["rows_quarantined"] + b["rows_rejected"], b
        actual = warehouse_rows(postgres_url(databases[1]), TABLES)
        assert_same_rows(
            without_history_context(actual), without_history_context(expected), "concurrent loads"
        )
        RELIABILITY["concurrent batches loaded (Postgres, processes)"] += len(JOBS)
    finally:
        for database in databases:
            drop_database(database)


@pytest.mark.slow
def test_concurrent_loads_on_the_embedded_duckdb_wait_for_the_file_and_equal_sequential_loads(
    sources: Path, tmp_path: Path
):
    """DuckDB lets one process use the file: the four loads take turns (each waits for the lock) and the
    warehouse ends as after the same batches one after another; none fails with a lock error."""
    root = tmp_path / "data"
    with pytest.MonkeyPatch.context() as mp:
        _sequential(_fresh(root, sources), f"duckdb:///{root / 'warehouse.duckdb'}", mp)
    expected = warehouse_rows(f"duckdb:///{root / 'warehouse.duckdb'}", TABLES)
    root.rename(tmp_path / "data-sequential")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    with pytest.MonkeyPatch.context() as mp:
        outcomes = _concurrent(_fresh(root, sources), url, mp)
    assert [o["error"] for o in outcomes] == [None] * len(JOBS), outcomes
    actual = warehouse_rows(url, TABLES)
    assert_same_rows(without_history_context(actual), without_history_context(expected), "DuckDB loads")
    # the loads' named locks (a file each in warehouse.duckdb.locks/) are gone with their holders: the folder
    # does not keep a file per batch ever loaded
    assert not list((root / "warehouse.duckdb.locks").glob("*.lock"))
    RELIABILITY["concurrent batches loaded (DuckDB, processes taking turns)"] += len(JOBS)


HOLD_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_a_load_waits_for_a_duckdb_file_held_by_another_process_then_names_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    import subprocess
    import sys
    import time

    from emergency_dw.warehouse import connect
    from emergency_dw.warehouse.duckdb_backend import LOCK_TIMEOUT_ENV, WarehouseBusy

    path = tmp_path / "warehouse.duckdb"
    connect(f"duckdb:///{path}").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(path), "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with caplog.at_level("WARNING"):
            warehouse = connect(f"duckdb:///{path}")  # waits until the other process lets go
        waited = time.monotonic() - started
        warehouse.close()
        assert waited > 1, "the connection waited for the other process"
        message = " ".join(r.getMessage() for r in caplog.records)
        assert "in use by" in message and f"(PID {holder.pid})" in message and "waiting" in message
    finally:
        holder.wait(timeout=30)

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(path), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv(LOCK_TIMEOUT_ENV, "1")
        with pytest.raises(WarehouseBusy) as failed:
            connect(f"duckdb:///{path}")
        text = str(failed.value)
        assert str(path) in text and f"(PID {holder.pid})" in text
        assert LOCK_TIMEOUT_ENV in text and "postgresql://" in text, "the message says what to do"
    finally:
        holder.terminate()
        holder.wait(timeout=30)


def _open_when_all_are_ready(path: str, barrier) -> str:
    from emergency_dw.warehouse import connect

    barrier.wait()
    try:
        connect(f"duckdb:///{path}").close()
        return "ok"
    except Exception as exc:  # the test reports every failure by its message
        return f"{type(exc).__name__}: {exc}"


def test_processes_opening_a_new_embedded_warehouse_at_once_all_get_it(tmp_path: Path):
    """The first `edw ingest` of a fresh data directory often runs beside others (a backfill, the DAGs):
    DuckDB creates the file, then writes its header, and a process opening it in between was told it is
    "not a valid DuckDB database file". Six processes opening one new file at the same moment, twenty
    times: each one connects."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    failures = []
    with context.Manager() as manager, context.Pool(6) as pool:
        for attempt in range(20):
            path = tmp_path / f"fresh-{attempt}" / "warehouse.duckdb"
            path.parent.mkdir()
            barrier = manager.Barrier(6)
            outcomes = pool.starmap(_open_when_all_are_ready, [(str(path), barrier)] * 6)
            failures += [o for o in outcomes if o != "ok"]
    assert failures == [], failures


@pytest.mark.postgres
def test_two_batches_of_a_feed_committing_at_once_keep_the_higher_watermark(tmp_path: Path):
    """The watermark row of a feed is written by every batch: two transactions writing it at once both
    commit (no duplicate-key failure on audit.watermarks) and the higher mark stays."""
    import threading

    import pandas as pd

    from emergency_dw.catalog import get_feed
    from emergency_dw.pipeline.audit import raise_watermark
    from emergency_dw.pipeline.tables import ensure_pipeline_tables
    from emergency_dw.warehouse import connect

    database = create_database("edw_test_conc_wm")
    url = postgres_url(database)
    try:
        setup = connect(url)
        ensure_pipeline_tables(setup, get_feed("alerts_110"))
        setup.close()
        first, second = connect(url), connect(url)
        high = pd.Timestamp("2026-11-26T15:00:00Z")
        low = pd.Timestamp("2026-11-25T15:00:00Z")
        errors: list[BaseException] = []
        with first.transaction() as tx:
            raise_watermark(
                tx, "alerts_110", high.to_pydatetime(), "alerts_110:2026-11-26", pd.Timestamp.now(tz="UTC")
            )

            def later() -> None:
                try:
                    with second.transaction() as tx2:  # blocks on the first's row until it commits
                        raise_watermark(
                            tx2,
                            "alerts_110",
                            low.to_pydatetime(),
                            "alerts_110:2026-11-25",
                            pd.Timestamp.now(tz="UTC"),
                        )
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            thread = threading.Thread(target=later)
            thread.start()
            thread.join(timeout=1.0)
            assert thread.is_alive(), "the second batch waits for the first's transaction"
        thread.join(timeout=30)
        assert not errors, errors
        rows = first.query("select high_watermark, batch_id from audit.watermarks").to_pylist()
        first.close()
        second.close()
        assert rows == [{"high_watermark": high.to_pydatetime(), "batch_id": "alerts_110:2026-11-26"}]
    finally:
        drop_database(database)
