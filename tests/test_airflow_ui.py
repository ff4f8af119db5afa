"""The Airflow UI of `make airflow`, opened in headless Chromium as a data engineer would open it.

`make airflow` runs `tools/airflow-local standalone`; this starts the same wrapper's metadata database,
DAG serialisation and API server (which serves the UI) on a free port, in a fresh AIRFLOW_HOME, so the
test sees what a user on a fresh machine sees: the project's DAGs with their tags, no example DAGs,
no login page.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emergency_dw import catalog

from browser import render
from conftest import free_port

AIRFLOW_LOCAL = Path(__file__).resolve().parents[1] / "tools" / "airflow-local"
pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict, timeout: float = 120) -> None:
    done = subprocess.run(
        [str(AIRFLOW_LOCAL), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"tools/airflow-local {' '.join(args)} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory):
    """The API server and UI of a fresh local Airflow (SQLite metadata) with the project's DAGs."""
    home = tmp_path_factory.mktemp("airflow-ui")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_HOME"))}
    env.update(
        EDW_DATA_DIR=str(home / "data"),
        AIRFLOW__API__PORT=str(port),
        EDW_AIRFLOW=str(Path(sys.executable).with_name("airflow")),
    )
    _run(["db", "migrate"], env)
    _run(["dags", "reserialize"], env)  # what the dag-processor of `airflow standalone` does first
    log_path = home / "api-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(AIRFLOW_LOCAL), "api-server"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"Airflow's API server did not come up on {base}:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield {"base": base, "log": log_path, "home": home}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_the_dag_list_shows_every_project_dag_with_its_tags_and_no_login(airflow_ui, tmp_path: Path):
    dags = httpx.get(f"{airflow_ui['base']}/api/v2/dags", params={"limit": 100}, timeout=10).json()["dags"]
    expected = {f"ingest__{f.name}" for f in catalog.all_feeds()} | {"warehouse__build"}
    assert {d["dag_id"] for d in dags} == expected, "the project's DAGs and nothing else (no example DAGs)"

    page = render(f"{airflow_ui['base']}/dags", tmp_path / "airflow-dags.png", budget_ms=20000, timeout=90)
    text = page.text
    assert "Sign in" not in text and "Password" not in text, "the local UI opens without a login page"
    assert f"{len(expected)} Dags" in text
    for dag_id in (
        "ingest__alerts_110",
        "ingest__power_load_readings",
        "ingest__dispatch_records",
        "warehouse__build",
    ):
        assert dag_id in text
    shown = {d["dag_id"]: sorted(t["name"] for t in d["tags"]) for d in dags}
    for dag_id in ("ingest__alerts_110", "warehouse__build"):
        # the UI lists a DAG's tags after its id, sorted, up to four of them
        tags = " , ".join(shown[dag_id][:4])
        assert f"{dag_id} {tags}" in text, f"{dag_id}'s tags {shown[dag_id]} are not shown next to it"
    assert page.screenshot.stat().st_size > 20_000


def test_the_local_ui_listens_on_localhost_only(airflow_ui):
    log = airflow_ui["log"].read_text()
    assert "127.0.0.1" in log and "0.0.0.0" not in log, log[-2000:]


def _listening_ports() -> set[int]:
    """TCP ports with a listening socket on this machine, any address (from /proc/net/tcp and tcp6)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A":  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.parametrize(
    ("component", "port_setting", "started"),
    [
        ("triggerer", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "Starting the triggerer"),
        ("scheduler", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "Starting the scheduler"),
    ],
)
def test_the_local_scheduler_and_triggerer_open_no_log_server_port(
    airflow_ui, component: str, port_setting: str, started: str
):
    """`make airflow` says it listens on 127.0.0.1 only; the scheduler and triggerer of `airflow standalone`
    would each serve task logs on every interface (8793, 8794). Started through tools/airflow-local, they
    open no such port: the API server reads the task logs from the files."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_HOME"))}
    env.update(
        {
            "EDW_DATA_DIR": str(airflow_ui["home"] / "data"),
            "EDW_AIRFLOW": str(Path(sys.executable).with_name("airflow")),
            port_setting: str(port),
        }
    )
    log_path = airflow_ui["home"] / f"{component}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(AIRFLOW_LOCAL), component],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while started.lower() not in log_path.read_text().lower():
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{component} did not start:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.5)
        time.sleep(5)  # a log server would be up by now: it starts before the component's loop
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert port not in _listening_ports(), f"{component} serves logs on port {port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
