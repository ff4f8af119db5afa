"""Airflow for the command line and the runner: a home under EDW_DATA_DIR (SQLite metadata) and this
repository's DAGs, unless Airflow is configured already. Nothing here knows of the simulator."""

from __future__ import annotations

import os
from pathlib import Path

from .config import settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def airflow_environment() -> None:
    """Point Airflow at a home under EDW_DATA_DIR (SQLite metadata) and this repository's DAGs,
    unless the user configured Airflow already. Call before importing airflow."""
    home = settings().data_dir / "airflow"
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # batches are local days: `airflow backfill create --from-date 2026-11-24` means that day in Wenzhou
    os.environ.setdefault("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Asia/Shanghai")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ.setdefault(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{Path(os.environ['AIRFLOW_HOME']) / 'airflow.db'}"
    )
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("SCARF_ANALYTICS", "false")
    os.environ.setdefault("AIRFLOW__USAGE_DATA_COLLECTION__ENABLED", "False")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    # no lineage events either: OpenLineage is off, on purpose (its provider is not installed)
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__DISABLED", "True")
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "emergency_dw")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    # Run in the foreground: a retry of a failed source read waits seconds, not the scheduler's minutes.
    os.environ.setdefault("EDW_RETRY_DELAY_SECONDS", "5")


def ensure_airflow_db() -> None:
    """Create or upgrade the Airflow metadata database (idempotent)."""
    from airflow.utils.db import initdb

    marker = Path(os.environ["AIRFLOW_HOME"]) / ".edw-db-ready"
    if not marker.exists():
        initdb()
        marker.write_text("ok\n")
