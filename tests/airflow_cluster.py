"""A real Airflow 3 deployment for tests: the benchmark's (``edw_bench.airflow_cluster``), its metadata
database made on the tests' Postgres (``EDW_TEST_POSTGRES_URL``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edw_bench import airflow_cluster as cluster
from edw_bench.airflow_cluster import AirflowCluster, redis_keys

from conftest import POSTGRES_URL

__all__ = ["AirflowCluster", "airflow_cluster", "redis_keys"]


@contextmanager
def airflow_cluster(
    home: Path, edw_env: dict[str, str], executor: str = "LocalExecutor", parallelism: int = 4
) -> Iterator[AirflowCluster]:
    """Airflow with only the runs a test asks for (no job schedule) on a fresh metadata database."""
    with cluster.airflow_cluster(
        home, edw_env, POSTGRES_URL, executor=executor, parallelism=parallelism
    ) as running:
        yield running
