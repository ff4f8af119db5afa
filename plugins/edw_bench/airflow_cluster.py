"""A real Airflow 3 deployment: Postgres metadata, api-server, dag-processor, scheduler, optionally a
triggerer (deferrable tasks) and, for Celery, a worker on the local Redis; the project's own dags folder.
Each component is a process of its own (its own session, stopped by its id afterwards); ports, the
metadata database, the Redis key prefix and the Celery hostname are chosen at run time, so parallel runs
do not meet. The benchmark's scheduler stage runs the day on it; the Airflow tests (backfills, Celery)
use it through ``tests/airflow_cluster.py``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from emergency_dw.pii import PII_SALT_ENV

from .warehouses import create_database, database_url, drop_database

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
# the CeleryExecutor's broker (the Airflow tests' Celery run; the benchmark runs the LocalExecutor)
REDIS_URL = os.environ.get("EDW_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = 11  # with a key prefix of each run's own (below)
FINISHED = ("success", "failed")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AirflowCluster:
    home: Path
    env: dict[str, str]
    metadata_url: str  # for psycopg
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    redis_prefix: str | None = None

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        if out.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            )
        return out

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        with psycopg.connect(self.metadata_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def dag_runs(self, dag_ids: list[str]) -> list[dict]:
        return self.query(
            "select dag_id, run_id, run_type, state, logical_date, data_interval_start, data_interval_end, "
            "start_date, end_date, backfill_id from dag_run where dag_id = any(%s) order by dag_id, logical_date",
            (dag_ids,),
        )

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Until the dag-processor has parsed the folder and serialised these DAGs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(psycopg.Error):
                found = self.query("select dag_id from serialized_dag where dag_id = any(%s)", (dag_ids,))
                if {r["dag_id"] for r in found} >= set(dag_ids):
                    return
            time.sleep(1)
        raise AssertionError(
            f"the dag-processor did not serialise {dag_ids} within {timeout} s:\n{self.logs()}"
        )

    def wait_for_runs(self, dag_ids: list[str], count: int, timeout: float) -> list[dict]:
        """Until ``count`` runs of these DAGs have finished; returns them."""
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            self.check_alive()
            runs = self.dag_runs(dag_ids)
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                return runs
            time.sleep(2)
        states = [(r["dag_id"], r["run_id"], r["state"]) for r in runs]
        raise AssertionError(f"{count} runs did not finish within {timeout} s: {states}\n{self.logs()}")

    def task_states(self, dag_ids: list[str]) -> list[dict]:
        return self.query(
            "select dag_id, run_id, task_id, state, try_number, hostname, start_date, end_date "
            "from task_instance where dag_id = any(%s) order by dag_id, run_id, task_id",
            (dag_ids,),
        )

    def task_log(self, dag_id: str) -> str:
        """Every task log of the DAG, for failure messages."""
        logs = sorted((self.home / "logs").rglob(f"dag_id={dag_id}/**/*.log"))
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in logs[-4:])

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}:\n{self.logs()}")

    def logs(self, lines: int = 25) -> str:
        out = []
        for name in self.processes:
            path = self.home / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log\n" + "\n".join(tail))
        return "\n".join(out)

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # its own process group: stopped with everything it started
        )

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def redis_keys(prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    try:
        return [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=1000)]
    finally:
        client.close()


def delete_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _require_redis() -> None:
    import redis

    client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}", socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise AssertionError(
            f"Redis is unreachable at {REDIS_URL} ({exc}); the CeleryExecutor needs it as its broker. "
            "Start it with: redis-server --daemonize yes --bind 127.0.0.1 --save '' (or set EDW_TEST_REDIS_URL)"
        ) from exc
    finally:
        client.close()


@contextmanager
def airflow_cluster(
    home: Path,
    edw_env: dict[str, str],
    admin_url: str,
    executor: str = "LocalExecutor",
    parallelism: int = 4,
    job_schedule: bool = False,
    triggerer: bool = False,
    database_prefix: str = "edw_test_airflow",
) -> Iterator[AirflowCluster]:
    """Airflow on a fresh Postgres metadata database (``<database_prefix>_<random>`` on the server of
    ``admin_url``, dropped afterwards) with the project's dags folder; ``edw_env`` (the warehouse, the data
    directory, the sources) reaches the tasks through the scheduler or worker. ``job_schedule``: the
    scheduler makes the DAGs' scheduled runs (off: only the runs asked for, such as backfills);
    ``triggerer``: a triggerer runs deferred tasks."""
    home.mkdir(parents=True, exist_ok=True)
    database = create_database(admin_url, database_prefix)
    api_port = free_port()
    metadata = database_url(admin_url, database)
    sync = metadata.replace("postgresql://", "postgresql+psycopg://", 1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "EDW_"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sync,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.replace(
            "postgresql://", "postgresql+psycopg_async://", 1
        ),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        # off: only the runs asked for (backfills); on: the DAGs' scheduled runs too
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(job_schedule),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "emergency_dw",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "GX_ANALYTICS_ENABLED": "False",
        "EDW_RETRY_DELAY_SECONDS": "3",
        # the session's salt: its warehouses are compared with ones loaded outside Airflow
        **({PII_SALT_ENV: salt} if (salt := os.environ.get(PII_SALT_ENV)) else {}),
        **edw_env,
    }
    prefix = None
    if executor == "CeleryExecutor":
        _require_redis()
        prefix = f"edw-test-{uuid.uuid4().hex[:10]}:"
        env["AIRFLOW__CELERY__BROKER_URL"] = f"{REDIS_URL}/{REDIS_DB}"
        env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] = prefix
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + metadata
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(parallelism)
    cluster = AirflowCluster(home, env, metadata, redis_prefix=prefix)
    try:
        cluster.cli("db", "migrate", timeout=300)
        cluster.start("api-server", "api-server", "--port", str(api_port))
        cluster.start("dag-processor", "dag-processor")
        cluster.start("scheduler", "scheduler", "--skip-serve-logs")
        if triggerer:
            cluster.start("triggerer", "triggerer", "--skip-serve-logs")
        if executor == "CeleryExecutor":
            cluster.start(
                "celery-worker",
                "celery",
                "worker",
                "--concurrency",
                str(parallelism),
                "--celery-hostname",
                f"{prefix.rstrip(':')}@%h",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            )
        yield cluster
    finally:
        cluster.stop()
        if prefix:
            delete_redis_keys(prefix)
        drop_database(admin_url, database)
