"""Run the ingestion DAGs for real, in this process (``dag.test()`` on Airflow's SQLite metadata)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pendulum

from .catalog import get_feed
from .config import LOCAL_TZ, settings

log = logging.getLogger(__name__)


@dataclass
class DagOutcome:
    feed: str
    day: dt.date
    state: str
    seconds: float
    batch: dict | None  # the batch's row in audit.batches
    error: str | None = None


def run_ingest_dag(feed_name: str, day: dt.date) -> DagOutcome:
    from .airflow_env import ensure_airflow_db
    from .pipeline.dags import build_ingest_dag

    ensure_airflow_db()
    dag = build_ingest_dag(get_feed(feed_name))
    started = time.perf_counter()
    logical = pendulum.datetime(day.year, day.month, day.day, tz=str(LOCAL_TZ))
    # dag.test() re-parses the DAG folder and writes every DAG it finds to the metadata DB; naming this
    # DAG in Airflow's parsing context makes the DAG files build only it (seconds saved per run: the
    # Cosmos-rendered warehouse__build DAG alone takes about 3.5 s to build).
    with _one_run_at_a_time(dag.dag_id, day), _parsing_context(dag.dag_id):
        run = dag.test(logical_date=logical, run_conf={"date": day.isoformat()})
    state = str(getattr(run.state, "value", run.state)) if run is not None else "unknown"
    batch = latest_batch(f"{feed_name}:{day.isoformat()}")
    error = batch.get("error") if batch else None
    if state != "success" and not error:
        error = f"DAG ingest__{feed_name} ended {state}; see the task logs under {settings().data_dir / 'airflow' / 'logs'}"
    return DagOutcome(feed_name, day, state, time.perf_counter() - started, batch, error)


@contextlib.contextmanager
def _one_run_at_a_time(dag_id: str, day: dt.date):
    """Hold ``data/airflow/locks/<dag>__<day>.lock`` while the DAG runs for the day: a second ``edw ingest``
    or backfill of the same feed and day from this data directory waits for the first, then runs (and
    replaces the batch), instead of both writing the same DAG run into Airflow's metadata database and one
    of them dying in it. Waits up to ``EDW_LOCK_TIMEOUT_SECONDS`` (default 600)."""
    from .warehouse import wait_for_lock

    folder = settings().data_dir / "airflow" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{dag_id}__{day.isoformat()}.lock", "a+") as handle:

        def try_once() -> str | None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                handle.seek(0)
                return handle.read().strip() or "another process"

        wait_for_lock(try_once, f"{dag_id} for {day}", held="is already running in")
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _parsing_context(dag_id: str):
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID

    from .config import temporary_environment

    return temporary_environment({_AIRFLOW_PARSING_CONTEXT_DAG_ID: dag_id})


def latest_batch(batch_id: str) -> dict | None:
    from .warehouse import connect

    warehouse = connect(settings().warehouse_url)
    try:
        rows = warehouse.query("select * from audit.batches where batch_id = ?", [batch_id]).to_pylist()
    except Exception:  # noqa: BLE001 - no audit table yet means no batch
        rows = []
    finally:
        warehouse.close()
    return rows[0] if rows else None


def run_days(
    feeds: list[str], days: list[dt.date], on_done: Callable[[DagOutcome], None] | None = None
) -> list[DagOutcome]:
    outcomes = []
    for day in days:
        for feed in feeds:
            outcome = run_ingest_dag(feed, day)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes
