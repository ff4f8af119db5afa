"""Shared fixtures: a private data directory, a simulated small-scale day, the running simulator, Postgres."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DAY = dt.date(2026, 11, 27)  # a Friday; day 27 carries no schema drift
SCALE = 0.02
POSTGRES_URL = os.environ.get("EDW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("AIRFLOW__OPENLINEAGE__DISABLED", "True")
os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "emergency_dw")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# One salt for the session's personal-data hashes (a random one: never a value from the repository), so that
# warehouses built from different data directories, compared row for row, hash a phone alike.
os.environ.setdefault("EDW_PII_SALT", secrets.token_hex(32))


def _postgres_problem() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        return f"{type(exc).__name__}: {exc}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    message = (
        f"Postgres is unreachable at EDW_TEST_POSTGRES_URL={POSTGRES_URL} ({problem}).\n"
        f"Start the local cluster with:\n    {START_POSTGRES}\n"
        "or point EDW_TEST_POSTGRES_URL at a Postgres 15 you may create databases in."
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise pytest.UsageError("CI=true and " + message)
    session.config._edw_postgres_problem = message  # type: ignore[attr-defined]
    sys.stderr.write("\nWARNING: " + message + "\nTests marked 'postgres' will be skipped.\n")


# `make test` runs the tests on two workers (pytest-xdist): each test file runs whole on one worker (its module
# fixtures are built once), and files that share something a worker would otherwise build twice or that must
# not overlap run on the same worker, one after the other (pytest_xdist_make_scheduler below).
SHARED = {
    # `edw run`'s warehouse (the session fixture edw_run), and Postgres roles, which are cluster-wide:
    # test_roles, test_grants and test_bi_queries create and alter the same bi_reader, auditor and so on.
    "edw_run_and_roles": ("test_bi_queries", "test_reports", "test_run_summary", "test_roles", "test_grants"),
    # the session's built day (the session fixtures day_warehouse and day_warehouse_to_write)
    "day_warehouse": ("test_ingest", "test_marts_complete", "test_schema_upgrades"),
}
WORKER_GROUP = {module: group for group, modules in SHARED.items() for module in modules}
# The longest scopes first (longest-first keeps one worker from starting a long file while the other runs
# out of work): measured with `pytest -n 2 --junitxml` (each scope's tests' seconds added up, 2026-12-07:
# test_marts_power 228 s, test_bench 184, the edw_run group 151, the day_warehouse group 139, test_reliability_
# airflow 114, test_marts_history 88, test_dags 82, test_reliability_bad_input 67, test_airflow_ui 53; the
# rest under 45 s each). The other scopes follow in collection order.
LONGEST_FIRST = (
    "test_marts_power",
    "test_bench",
    "edw_run_and_roles",
    "day_warehouse",
    "test_reliability_airflow",
    "test_marts_history",
    "test_dags",
    "test_reliability_bad_input",
    "test_airflow_ui",
)


def _scope(nodeid: str) -> str:
    """A test's scope: its SHARED group, else its file (as a module name)."""
    module = Path(nodeid.split("::", 1)[0]).stem
    return WORKER_GROUP.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's scheduling by scope, the scope a test file or its SHARED group, handed out in collection order
    (LONGEST_FIRST, pytest_collection_modifyitems), not xdist's reordering by number of tests. (Not xdist's
    own `loadgroup`: under pytest 9 its xdist_group marks are lost, as it renames the tests through an
    attribute pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class ByFileAndGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return ByFileAndGroup(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {scope: position for position, scope in enumerate(LONGEST_FIRST)}
    items.sort(
        key=lambda item: rank.get(_scope(item.nodeid), len(LONGEST_FIRST))
    )  # stable: files keep their order
    problem = getattr(config, "_edw_postgres_problem", None)
    if problem is None:
        return
    skip = pytest.mark.skip(reason="Postgres unreachable (CI unset): " + problem.splitlines()[0])
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small-scale day of every source, simulated once per test session (read-only for tests)."""
    from emergency_dw.simulator.run import Simulator

    sources = tmp_path_factory.mktemp("sim") / "sources"
    Simulator(sources, scale=SCALE).simulate_day(DAY)
    return sources


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_simulator(simulated: Path, log: Path, fault_rate: float = 0.2) -> Iterator[dict]:
    """`edw simulate serve` for real, in its own process, over ``simulated``; yields base URL and token."""
    port = free_port()
    token = "test-token-" + str(port)
    env = dict(os.environ, EDW_DATA_DIR=str(simulated.parent), EDW_SIM_API_TOKEN=token)
    env.pop("EDW_SIM_ADMIN_TOKEN", None)  # the admin endpoint takes the API token
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emergency_dw.cli",
                "simulate",
                "serve",
                "--port",
                str(port),
                "--fault-rate",
                str(fault_rate),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator's server exited: {log.read_text()}")
    else:
        proc.kill()
        raise RuntimeError(f"the simulator's server did not answer within 30 s: {log.read_text()}")
    try:
        yield {"base": base, "token": token, "process": proc, "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def api_server(simulated: Path, tmp_path_factory: pytest.TempPathFactory):
    """The simulator's HTTP server, started for real as `edw simulate serve` in its own process."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serve_simulator(simulated, log, fault_rate=0.2) as server:
        yield server


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The manifest `dbt parse` writes for the DuckDB target: each node's config as dbt resolved it (from
    the model's SQL, its YAML and dbt_project.yml), what dbt's own tools read of the project."""
    import json

    from emergency_dw.transform import run_dbt

    root = tmp_path_factory.mktemp("parsed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        parsed = run_dbt(["parse"], warehouse_url=f"duckdb:///{root / 'w.duckdb'}")
    assert parsed.success, parsed.error
    return json.loads((root / "data" / "dbt" / "target" / "manifest.json").read_text())


# What the reliability tests tried and survived, reported at the end of the run.
RELIABILITY: Counter = Counter()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand its tally to the controller
        session.config.workeroutput["reliability"] = dict(RELIABILITY)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # the xdist controller: a worker finished
    RELIABILITY.update(getattr(node, "workeroutput", {}).get("reliability", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if RELIABILITY:
        terminalreporter.section("reliability")
        for name, count in sorted(RELIABILITY.items()):
            terminalreporter.write_line(f"{name}: {count}")


RUN_SCALE = 0.005  # `edw run` in a subprocess: the smallest scale that still has every feed's batch


@dataclass
class EdwRun:
    data_dir: Path
    warehouse_url: str
    returncode: int
    output: str  # stdout and stderr
    seconds: float


@pytest.fixture(scope="session")
def edw_run(tmp_path_factory: pytest.TempPathFactory) -> EdwRun:
    """`edw run --date DAY --scale RUN_SCALE` for real, as `make run` calls it, in a fresh EDW_DATA_DIR
    (once per session: the run summary and the report pages are both checked against what it left)."""
    data_dir = tmp_path_factory.mktemp("edw-run") / "data"
    env = dict(os.environ, EDW_DATA_DIR=str(data_dir), COLUMNS="160")
    env.pop("EDW_WAREHOUSE_URL", None)
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "run",
            "--date",
            DAY.isoformat(),
            "--scale",
            str(RUN_SCALE),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return EdwRun(
        data_dir,
        f"duckdb:///{data_dir / 'warehouse.duckdb'}",
        proc.returncode,
        proc.stdout + proc.stderr,
        time.monotonic() - started,
    )


@dataclass
class DayWarehouse:
    root: Path  # its data directory is root / "data" (sources, lake, validation results, dbt's target)
    url: str
    results: dict  # feed -> what ingest returned, or the BatchFailed it raised
    build: object  # emergency_dw.transform.DbtRun: `dbt build` of the whole project after the ingests


def ingest_and_build_day(simulated: Path, root: Path, url: str) -> DayWarehouse:
    """Every feed of the session's simulated day ingested for real (connector, validation, load) into the
    warehouse at ``url``, then `dbt build` of the whole project (seeds, every model, data and unit tests)."""
    import shutil

    from emergency_dw.catalog import all_feeds
    from emergency_dw.embedded import embedded_sources
    from emergency_dw.pipeline.ingest import BatchFailed, day_interval, ingest
    from emergency_dw.transform import run_dbt

    shutil.copytree(simulated, root / "data" / "sources")
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
        with embedded_sources():
            start, end = day_interval(DAY)
            for feed in all_feeds():
                try:
                    results[feed.name] = ingest(feed.name, start, end)
                except BatchFailed as exc:
                    results[feed.name] = exc
        build = run_dbt(["build"], warehouse_url=url)
    return DayWarehouse(root, url, results, build)


@pytest.fixture(scope="session")
def _day_warehouses(
    simulated: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DayWarehouse, DayWarehouse]:
    """The session's simulated day, every feed ingested into a fresh DuckDB warehouse and the whole project
    built on it (ingest_and_build_day), once per session; and a copy of it made at once, for readers."""
    root = tmp_path_factory.mktemp("day-duckdb")
    day = ingest_and_build_day(simulated, root, f"duckdb:///{root / 'data' / 'warehouse.duckdb'}")
    return day, _copy_day_warehouse(day, tmp_path_factory.mktemp("day-duckdb-read"))


@pytest.fixture(scope="session")
def day_warehouse(_day_warehouses) -> DayWarehouse:
    """The session's built day on DuckDB (_day_warehouses), as built: read-only (test_marts_complete reads
    its marts). A copy: its raw rows and audit name the files of the original, which test_ingest owns."""
    return _day_warehouses[1]


@pytest.fixture(scope="session")
def day_warehouse_to_write(_day_warehouses) -> DayWarehouse:
    """The session's built day on DuckDB where it was ingested, for its one writer, test_ingest (whose reruns
    must find the sources at the paths the first load read them from, as its raw rows record them)."""
    return _day_warehouses[0]


def _copy_day_warehouse(day: DayWarehouse, root: Path) -> DayWarehouse:
    """A copy of a DuckDB ``day`` (its warehouse file and its data directory) under ``root``; not the files
    its loads took their OS locks on (``warehouse.duckdb.locks/``), which the copy makes anew as it writes."""
    import shutil

    assert day.url.startswith("duckdb:///"), day.url
    shutil.copytree(day.root / "data", root / "data", ignore=shutil.ignore_patterns("*.duckdb.locks"))
    return DayWarehouse(root, f"duckdb:///{root / 'data' / 'warehouse.duckdb'}", day.results, day.build)
