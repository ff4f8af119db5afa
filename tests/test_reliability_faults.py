"""Sources that misbehave for real: the simulator's API told to fail (500, 429, timeouts, truncated JSON,
dropped connections, empty pages) and source databases that vanish mid-read.

A fault the connector's retries outlast leaves the warehouse exactly as a clean run does; a fault that
persists fails the batch cleanly (rule ``source_readable``) and changes nothing that was there before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import httpx
import psycopg
import pytest

from emergency_dw import catalog
from emergency_dw.connectors import sql as sql_connector
from emergency_dw.pipeline import ingest as ingest_module
from emergency_dw.pipeline.ingest import BatchFailed, batch_id_for, day_interval, ingest
from emergency_dw.simulator.run import Simulator

from conftest import DAY, RELIABILITY, serve_simulator
from reliability import batch_rows, postgres_database, tables_of, warehouse_state

pytestmark = pytest.mark.timeout(120)

FEED = "alerts_110"
FAULTS = ["500", "429", "timeout", "truncated_json", "drop_connection", "empty_page"]
MAX_ATTEMPTS = 4
CLIENT_TIMEOUT = 0.5  # seconds; the "timeout" fault sleeps longer than this
WHAT_THE_CLIENT_SAW = {
    "500": "HTTP 500",
    "429": "HTTP 429",
    "timeout": "timeout after",
    "truncated_json": "malformed or truncated JSON",
    "drop_connection": "connection failed",
    "empty_page": "empty page",
}


class Admin:
    """The simulator's fault endpoint, as a test (or a drill) drives it."""

    def __init__(self, base: str, token: str) -> None:
        self.url = base + "/admin/faults"
        self.headers = {"Authorization": f"Bearer {token}"}

    def plan(self, **plan) -> dict:
        response = httpx.post(self.url, json=plan, headers=self.headers, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def clear(self) -> dict:
        response = httpx.delete(self.url, headers=self.headers, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def injected(self) -> dict[str, int]:
        return httpx.get(self.url, headers=self.headers, timeout=5).json()["injected"]


@pytest.fixture(scope="module")
def server(simulated: Path, tmp_path_factory: pytest.TempPathFactory):
    """The simulator's server with no random faults: every fault in these tests is one we asked for."""
    log = tmp_path_factory.mktemp("fault-server") / "server.log"
    with serve_simulator(simulated, log, fault_rate=0.0) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    return Admin(server["base"], server["token"])


def _http_env(mp: pytest.MonkeyPatch, server: dict, data_dir: Path, warehouse: str) -> None:
    mp.setenv("EDW_DATA_DIR", str(data_dir))
    mp.setenv("EDW_WAREHOUSE_URL", warehouse)
    mp.setenv("EDW_SOURCE_API_URL", server["base"])
    mp.setenv("EDW_SOURCE_API_TOKEN", server["token"])
    mp.setenv("EDW_HTTP_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.01")
    mp.setenv("EDW_HTTP_MAX_BACKOFF_SECONDS", "0.05")
    mp.setenv("EDW_HTTP_TIMEOUT_SECONDS", str(CLIENT_TIMEOUT))


@pytest.fixture(scope="module")
def clean(server, admin: Admin, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The day's batch ingested with no fault (the reference), and an earlier state: the feed's first
    half-day loaded in a warehouse of its own."""
    root = tmp_path_factory.mktemp("faults")
    admin.clear()
    before = admin.injected()
    start, end = day_interval(DAY)
    with pytest.MonkeyPatch.context() as mp:
        _http_env(mp, server, root / "data", f"duckdb:///{root / 'clean.duckdb'}")
        result = ingest(FEED, start, end)
        earlier_root = root / "earlier"
        _http_env(mp, server, earlier_root / "data", f"duckdb:///{earlier_root / 'warehouse.duckdb'}")
        half = ingest(FEED, start, start + dt.timedelta(hours=12))
    assert result.rows_loaded > 0 and 0 < half.rows_extracted < result.rows_extracted
    assert admin.injected() == before, "the reference runs saw no fault"
    return {
        "root": root,
        "data": root / "data",
        "result": result,
        "state": warehouse_state(f"duckdb:///{root / 'clean.duckdb'}", tables_of(FEED)),
        "earlier": earlier_root,
    }


def test_the_fault_endpoint_needs_the_admin_token_and_a_valid_plan(server, admin: Admin):
    plan = {"feed": FEED, "faults": ["500"], "times": 1}
    assert httpx.post(admin.url, json=plan, timeout=5).status_code == 401
    wrong = httpx.post(admin.url, json=plan, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    for bad, says in (
        ({"feed": FEED, "faults": ["meteor"], "times": 1}, "unknown fault"),
        ({"feed": "no_such_feed", "faults": ["500"], "times": 1}, "feed must be one of"),
        ({"feed": FEED, "faults": ["500"], "times": 0}, "times must be"),
    ):
        response = httpx.post(admin.url, json=bad, headers=admin.headers, timeout=5)
        assert response.status_code == 400 and says in response.json()["error"]
    state = admin.plan(**plan)
    assert state["plans"][0]["feed"] == FEED and state["plans"][0]["remaining"] == 1
    endpoint = catalog.get_feed(FEED).connector.endpoint
    first = httpx.get(server["base"] + endpoint, headers={"Authorization": f"Bearer {server['token']}"})
    second = httpx.get(server["base"] + endpoint, headers={"Authorization": f"Bearer {server['token']}"})
    assert (first.status_code, second.status_code) == (500, 200), "exactly the next request failed"
    assert admin.clear()["plans"] == []
    RELIABILITY["faults injected"] += 1


@pytest.mark.parametrize("fault", [*FAULTS, "mixed"])
def test_a_fault_the_retries_outlast_leaves_the_warehouse_as_a_clean_run(
    fault: str, clean: dict, server, admin: Admin, tmp_path: Path
):
    faults = ["500", "timeout", "drop_connection"] if fault == "mixed" else [fault]
    times = MAX_ATTEMPTS - 1
    before = sum(admin.injected().values())
    admin.plan(feed=FEED, faults=faults, times=times, sleep_seconds=CLIENT_TIMEOUT * 4)
    url = f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            _http_env(mp, server, tmp_path / "data", url)  # a data directory belongs to one warehouse
            result = ingest(FEED, *day_interval(DAY))
    finally:
        admin.clear()
    injected = sum(admin.injected().values()) - before
    RELIABILITY["faults injected"] += injected
    assert injected == times, "the server really failed that many requests"
    assert (result.rows_extracted, result.rows_loaded, result.rows_quarantined) == (
        clean["result"].rows_extracted,
        clean["result"].rows_loaded,
        clean["result"].rows_quarantined,
    )
    assert warehouse_state(url, tables_of(FEED)) == clean["state"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_persistent_fault_fails_the_batch_and_changes_nothing(
    fault: str, clean: dict, server, admin: Admin, tmp_path: Path
):
    root = tmp_path / "earlier"
    shutil.copytree(clean["earlier"], root)
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    earlier = warehouse_state(url, tables_of(FEED))
    lake_before = sorted(p.relative_to(root) for p in (root / "data" / "lake").rglob("*") if p.is_file())
    before = sum(admin.injected().values())
    admin.plan(feed=FEED, faults=[fault], times=1000, sleep_seconds=CLIENT_TIMEOUT * 4)
    start, end = day_interval(DAY)
    batch_id = batch_id_for(catalog.get_feed(FEED), start, end)
    try:
        with pytest.MonkeyPatch.context() as mp:
            _http_env(mp, server, root / "data", url)
            with pytest.raises(BatchFailed) as failure:
                ingest(FEED, start, end)
    finally:
        admin.clear()
    injected = sum(admin.injected().values()) - before
    RELIABILITY["faults injected"] += injected
    assert injected == MAX_ATTEMPTS, "the connector gave up after its attempts, no sooner, no later"
    message = str(failure.value)
    assert failure.value.rule == "source_readable"
    assert FEED in message and batch_id in message and "source_readable" in message
    assert WHAT_THE_CLIENT_SAW[fault] in message and f"{MAX_ATTEMPTS} attempts" in message
    assert batch_rows(url, "raw", FEED, batch_id) == 0
    assert warehouse_state(url, tables_of(FEED)) == earlier
    lake_after = sorted(p.relative_to(root) for p in (root / "data" / "lake").rglob("*") if p.is_file())
    assert lake_after == lake_before, "nothing of the failed pull was landed"


# ---------------------------------------------------------------- source databases vanishing mid-read
SQL_FEED = "cable_temperature_readings"


def _small_chunks(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """The feed read in chunks of ``rows`` (the catalog's chunk size is far larger than a test day)."""
    feed = catalog.get_feed(SQL_FEED)
    small = dataclasses.replace(feed, connector=dataclasses.replace(feed.connector, chunk_rows=rows))
    real = ingest_module.get_feed
    monkeypatch.setattr(ingest_module, "get_feed", lambda name: small if name == SQL_FEED else real(name))


def _on_chunk(monkeypatch: pytest.MonkeyPatch, number: int, action) -> list[int]:
    """Run ``action`` once ``number`` chunks have been fetched (the read is then half done)."""
    fetched: list[int] = []
    real = sql_connector._chunk_table

    def chunk(types, rows):
        fetched.append(len(rows))
        if len(fetched) == number:
            action()
        return real(types, rows)

    monkeypatch.setattr(sql_connector, "_chunk_table", chunk)
    return fetched


@pytest.mark.postgres
def test_a_postgres_source_terminated_mid_read_loads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    start, end = day_interval(DAY)
    batch_id = batch_id_for(catalog.get_feed(SQL_FEED), start, end)
    with postgres_database("edw_test_source") as (name, url):
        source_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        Simulator(tmp_path / "sources", scale=0.02, db_url=source_url).simulate_day(DAY, feeds=[SQL_FEED])
        warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("EDW_WAREHOUSE_URL", warehouse)
        monkeypatch.setenv("EDW_SOURCE_DB_URL", source_url)
        _small_chunks(monkeypatch, 50)
        terminated: list[int] = []

        def terminate() -> None:  # the database administrator kills the extraction's session
            with psycopg.connect(url, autocommit=True) as admin_conn:
                terminated.extend(
                    row[0]
                    for row in admin_conn.execute(
                        "select pg_terminate_backend(pid) from pg_stat_activity "
                        "where datname = %s and pid <> pg_backend_pid()",
                        [name],
                    )
                )

        with monkeypatch.context() as mp:
            fetched = _on_chunk(mp, 3, terminate)
            with pytest.raises(BatchFailed) as failure:
                ingest(SQL_FEED, start, end)
        RELIABILITY["faults injected"] += 1
        assert terminated and all(terminated), "the source session was really terminated"
        assert len(fetched) == 3 and fetched[0] == 50, "it failed mid-read, after some chunks had come"
        message = str(failure.value)
        assert failure.value.rule == "source_readable" and SQL_FEED in message and batch_id in message
        assert batch_rows(warehouse, "raw", SQL_FEED, batch_id) == 0
        assert not list((tmp_path / "data" / "lake").rglob("*.parquet")), "nothing partial was landed"
        loaded = ingest(SQL_FEED, start, end)  # the source is back: the batch loads whole
        assert loaded.rows_extracted > 150
        assert batch_rows(warehouse, "raw", SQL_FEED, batch_id) == loaded.rows_loaded
        assert loaded.rows_extracted == loaded.rows_loaded + loaded.rows_quarantined
        state = warehouse_state(warehouse, tables_of(SQL_FEED))
        with monkeypatch.context() as mp:  # a rerun that loses its source keeps the loaded batch
            _on_chunk(mp, 2, terminate)
            with pytest.raises(BatchFailed, match="source_readable"):
                ingest(SQL_FEED, start, end)
        RELIABILITY["faults injected"] += 1
        assert warehouse_state(warehouse, tables_of(SQL_FEED)) == state


def test_a_sqlite_source_damaged_mid_read_or_locked_loads_nothing(
    simulated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    start, end = day_interval(DAY)
    batch_id = batch_id_for(catalog.get_feed(SQL_FEED), start, end)
    database = tmp_path / "sources.sqlite"
    shutil.copy(simulated / "sql" / "sources.sqlite", database)
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", warehouse)
    monkeypatch.setenv("EDW_SOURCE_DB_URL", f"sqlite:///{database}?timeout=0.2")
    _small_chunks(monkeypatch, 20)

    # Locked: another program holds the database exclusively while the extraction starts.
    holder = sqlite3.connect(database)
    holder.execute("begin exclusive")
    try:
        with pytest.raises(BatchFailed) as locked:
            ingest(SQL_FEED, start, end)
    finally:
        holder.rollback()
        holder.close()
    RELIABILITY["faults injected"] += 1
    assert locked.value.rule == "source_readable" and "locked" in str(locked.value)
    assert batch_id in str(locked.value)

    # Damaged: the file is overwritten with zeros while the rows stream out of it.
    def damage() -> None:
        size = database.stat().st_size
        with database.open("r+b") as handle:
            handle.seek(4096)
            handle.write(b"\0" * (size - 4096))

    with monkeypatch.context() as mp:
        fetched = _on_chunk(mp, 2, damage)
        with pytest.raises(BatchFailed) as damaged:
            ingest(SQL_FEED, start, end)
    RELIABILITY["faults injected"] += 1
    assert len(fetched) == 2, "the damage came mid-read"
    assert damaged.value.rule == "source_readable" and SQL_FEED in str(damaged.value)
    assert batch_rows(warehouse, "raw", SQL_FEED, batch_id) == 0
    assert not list((tmp_path / "data" / "lake").rglob("*.parquet")), "nothing partial was landed"
