"""Airflow's own backfill and executors, for real, on Postgres: a 7-day `airflow backfill create` run by a
scheduler with the LocalExecutor (several runs at once) leaves the warehouse exactly as seven daily runs
through the project's runner do; the CeleryExecutor with a worker on the local Redis runs two DAG runs of
one feed at once and both batches load as they do alone.

The reference, seven daily runs (`edw backfill --from D1 --to D7`: the project's runner makes one DAG run
per day with `dag.test`, as `edw ingest --date D` does), is made once in a warehouse database of its own; the Airflow runs load into fresh ones. Both use the same
data directory path in turn, so lake paths and file names in audit.batches agree."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from emergency_dw.simulator.run import Simulator

from airflow_cluster import airflow_cluster, redis_keys
from conftest import RELIABILITY, serve_simulator
from reliability import (
    assert_same_rows,
    create_database,
    drop_database,
    postgres_url,
    warehouse_rows,
    without_history_context,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(420)]

SCALE = 0.01
DAYS = [dt.date(2026, 11, 20) + dt.timedelta(days=k) for k in range(7)]
FEEDS = ["alerts_110"]  # 110 alerts from an HTTP API: late rows, defects, a quarantine (two feeds at once and
# file drops: test_reliability_concurrency.py; every task here is a process importing pandas and GX)
DAG_IDS = [f"ingest__{feed}" for feed in FEEDS]
TABLES = [
    *[(schema, feed) for feed in FEEDS for schema in ("raw", "quarantine")],
    ("audit", "batches"),
    ("audit", "validation_results"),
    ("audit", "watermarks"),
]
# faults the simulated API serves on the backfill's first requests; the connector's retries outlast them
FAULTS = {"feed": "alerts_110", "faults": ["500", "429", "drop_connection", "truncated_json"], "times": 4}


@dataclass
class Reference:
    rows: dict[str, pd.DataFrame]
    manifest_rows: dict[str, int]  # batch id -> rows the simulator delivered
    seconds: float


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-reliability")


@pytest.fixture(scope="module")
def sources(work: Path) -> Path:
    root = work / "sources"
    simulator = Simulator(root, scale=SCALE)
    for day in DAYS:
        simulator.simulate_day(day, feeds=FEEDS)
    return root


def _data_dir(work: Path, sources: Path) -> Path:
    """``work/data``, fresh: a copy of the sources (file drops move to processed/ as they load)."""
    root = work / "data"
    assert not root.exists()
    shutil.copytree(sources, root / "sources")
    return root


def _retire(work: Path, label: str) -> None:
    (work / "data").rename(work / f"data-{label}")


def _manifest_rows(sources: Path) -> dict[str, int]:
    rows = {}
    for day in DAYS:
        manifest = json.loads((sources / "truth" / day.isoformat() / "manifest.json").read_text())
        for feed in FEEDS:
            rows[f"{feed}:{day}"] = manifest["feeds"][feed]["rows"]
    return rows


@pytest.fixture(scope="module")
def reference(work: Path, sources: Path):
    """Seven daily runs through the project's runner (`edw backfill`: dag.test, day by day)."""
    import time

    root = _data_dir(work, sources)
    database = create_database("edw_test_daily")
    url = postgres_url(database)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "EDW_"))},
        "EDW_DATA_DIR": str(root),
        "EDW_WAREHOUSE_URL": url,
        "AIRFLOW_HOME": str(work / "airflow-daily"),
        "EDW_HTTP_BACKOFF_SECONDS": "0.05",
        "EDW_PII_SALT": os.environ["EDW_PII_SALT"],  # the session's: the Airflow runs hash alike
    }
    started = time.perf_counter()
    try:
        # `edw backfill` runs the runner's DAG run (dag.test) for each day in turn: seven daily runs
        command = ["backfill", "--from", DAYS[0].isoformat(), "--to", DAYS[-1].isoformat(), "--no-build"]
        for feed in FEEDS:
            command += ["--feed", feed]
        out = subprocess.run(
            [sys.executable, "-m", "emergency_dw.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        rows = warehouse_rows(url, TABLES)
    finally:
        drop_database(database)
        _retire(work, "daily")
    return Reference(rows, _manifest_rows(sources), time.perf_counter() - started)


def _sources_env(root: Path, server: dict) -> dict[str, str]:
    return {
        "EDW_DATA_DIR": str(root),
        "EDW_SOURCE_API_URL": server["base"],
        "EDW_SOURCE_API_TOKEN": server["token"],
        "EDW_SOURCE_DB_URL": f"sqlite:///{root / 'sources' / 'sql' / 'sources.sqlite'}",
        "EDW_DROP_ROOT": str(root / "sources" / "drop"),
        "EDW_HTTP_BACKOFF_SECONDS": "0.05",
        "EDW_HTTP_MAX_BACKOFF_SECONDS": "0.5",
    }


def _only(rows: dict[str, pd.DataFrame], batch_ids: set[str]) -> dict[str, pd.DataFrame]:
    """The rows of these batches (watermarks, which span batches, left out)."""
    out = {}
    for name, frame in rows.items():
        if name == "audit.watermarks" or frame.empty:
            continue
        column = "_batch_id" if "_batch_id" in frame.columns else "batch_id"
        out[name] = frame[frame[column].isin(batch_ids)].reset_index(drop=True)
    return out


def _overlapping(runs: list[dict]) -> int:
    """How many pairs of runs were running at the same time."""
    pairs = 0
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            if a["start_date"] < b["end_date"] and b["start_date"] < a["end_date"]:
                pairs += 1
    return pairs


def _check_batches(rows: dict[str, pd.DataFrame], manifest_rows: dict[str, int], batch_ids: set[str]) -> None:
    """Every batch loaded, reconciles, and holds every row the simulator delivered that day."""
    batches = rows["audit.batches"].set_index("batch_id")
    assert set(batches.index) >= batch_ids
    for batch_id in batch_ids:
        b = batches.loc[batch_id]
        extracted, loaded, held, rejected = (
            int(b[c]) for c in ("rows_extracted", "rows_loaded", "rows_quarantined", "rows_rejected")
        )
        assert b["status"] == "loaded", (batch_id, b["error"])
        assert extracted == manifest_rows[batch_id], (
            f"{batch_id}: extracted {extracted} of {manifest_rows[batch_id]}"
        )
        assert extracted == loaded + held + rejected, f"{batch_id} does not reconcile"


def test_a_seven_day_airflow_backfill_equals_seven_daily_runs(
    work: Path, sources: Path, reference: Reference
):
    """`airflow backfill create` over 7 days (2 runs at a time), run by a real scheduler
    with the LocalExecutor on Postgres metadata while the API serves faults: the warehouse (raw rows,
    quarantine, audit.batches, validation results, watermarks) equals the seven daily runs'."""
    batch_ids = {f"{feed}:{day}" for feed in FEEDS for day in DAYS}
    _check_batches(reference.rows, reference.manifest_rows, batch_ids)
    root = _data_dir(work, sources)
    database = create_database("edw_test_backfill")
    url = postgres_url(database)
    try:
        with (
            serve_simulator(root / "sources", work / "backfill-simulator.log", fault_rate=0.2) as server,
            airflow_cluster(
                work / "airflow-local",
                {**_sources_env(root, server), "EDW_WAREHOUSE_URL": url},
                parallelism=4,
            ) as cluster,
        ):
            admin = {"Authorization": f"Bearer {server['token']}"}
            httpx.post(
                server["base"] + "/admin/faults", json=FAULTS, headers=admin, timeout=5
            ).raise_for_status()
            cluster.wait_for_dags(DAG_IDS)
            for dag_id in DAG_IDS:
                cluster.cli("dags", "unpause", dag_id)
                cluster.cli(
                    "backfill",
                    "create",
                    "--dag-id",
                    dag_id,
                    "--from-date",
                    DAYS[0].isoformat(),
                    "--to-date",
                    DAYS[-1].isoformat(),
                    "--max-active-runs",
                    "2",
                )
            runs = cluster.wait_for_runs(DAG_IDS, len(DAYS) * len(FEEDS), timeout=300)
            failed = [r for r in runs if r["state"] != "success"]
            assert not failed, (failed, cluster.task_log(failed[0]["dag_id"]))
            injected = httpx.get(server["base"] + "/admin/faults", headers=admin, timeout=5).json()
        assert injected["injected_total"] == FAULTS["times"], injected
        assert {r["run_type"] for r in runs} == {"backfill"} and len(runs) == len(DAYS) * len(FEEDS)
        local_days = {
            (r["dag_id"], r["data_interval_start"].astimezone(dt.timezone(dt.timedelta(hours=8))).date())
            for r in runs
        }
        assert local_days == {(dag_id, day) for dag_id in DAG_IDS for day in DAYS}
        overlaps = _overlapping(runs)
        assert overlaps >= 2, "runs of the backfill ran at the same time"
        for feed in FEEDS:
            partitions = sorted(p.name for p in (root / "lake" / "raw" / feed).iterdir())
            assert partitions == [f"dt={day}" for day in DAYS], feed
        rows = warehouse_rows(url, TABLES)
        _check_batches(rows, reference.manifest_rows, batch_ids)
        assert_same_rows(
            without_history_context(rows), without_history_context(reference.rows), "7-day Airflow backfill"
        )
        RELIABILITY["Airflow backfill runs equal to daily runs (LocalExecutor)"] += len(runs)
        RELIABILITY["Airflow backfill: pairs of runs at the same time"] += overlaps
        RELIABILITY["Airflow backfill: API faults injected and outlasted"] += injected["injected_total"]
    finally:
        drop_database(database)
        _retire(work, "backfill")


def test_the_celery_executor_runs_two_dag_runs_at_once_and_both_batches_load(
    work: Path, sources: Path, reference: Reference
):
    """CeleryExecutor, a real `airflow celery worker` (2 slots) on the local Redis, Postgres as the result
    backend: two runs of ingest__alerts_110 (two days) at once; both batches equal the daily runs'."""
    days = DAYS[:2]
    batch_ids = {f"alerts_110:{day}" for day in days}
    root = _data_dir(work, sources)
    database = create_database("edw_test_celery")
    url = postgres_url(database)
    try:
        with (
            serve_simulator(root / "sources", work / "celery-simulator.log", fault_rate=0.0) as server,
            airflow_cluster(
                work / "airflow-celery",
                {**_sources_env(root, server), "EDW_WAREHOUSE_URL": url},
                executor="CeleryExecutor",
                parallelism=2,
            ) as cluster,
        ):
            cluster.wait_for_dags(["ingest__alerts_110"])
            cluster.cli("dags", "unpause", "ingest__alerts_110")
            cluster.cli(
                "backfill",
                "create",
                "--dag-id",
                "ingest__alerts_110",
                "--from-date",
                days[0].isoformat(),
                "--to-date",
                days[-1].isoformat(),
                "--max-active-runs",
                "2",
            )
            runs = cluster.wait_for_runs(["ingest__alerts_110"], len(days), timeout=240)
            assert [r["state"] for r in runs] == ["success"] * len(days), cluster.task_log(
                "ingest__alerts_110"
            )
            assert redis_keys(cluster.redis_prefix), (
                "the tasks went through the Redis broker, under our prefix"
            )
            tasks = cluster.task_states(["ingest__alerts_110"])
            worker_log = (cluster.home / "celery-worker.log").read_text(errors="replace")
        assert len(tasks) == 2 * len(days) and all(t["state"] == "success" for t in tasks)
        assert worker_log.count("received") >= len(tasks), "every task ran on the Celery worker"
        assert _overlapping(runs) == 1, "the two runs ran at the same time"
        rows = warehouse_rows(url, TABLES)
        _check_batches(rows, reference.manifest_rows, batch_ids)
        expected = _only(reference.rows, batch_ids)
        assert_same_rows(
            without_history_context(_only(rows, batch_ids)), without_history_context(expected), "Celery runs"
        )
        RELIABILITY["Celery runs at once, batches equal to daily runs"] += len(runs)
    finally:
        drop_database(database)
        _retire(work, "celery")
    assert not redis_keys(cluster.redis_prefix), "the test's Redis keys are gone"
