"""The ``warehouse__build`` DAG: the dbt build, scheduled on the raw tables' Assets (any feed's new batch
triggers a build); one task running ``dbt build``, or the models and tests rendered as Airflow tasks by
astronomer-cosmos (``EDW_BUILD_MODE``)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pendulum
from airflow.sdk import AssetAny

from ..catalog import all_feeds
from .build_mode import DEFAULT_BUILD_MODE, build_mode
from .dags import RETRIES, RETRY_DELAY_SECONDS, on_failure, raw_asset

DBT_PROJECT = Path(__file__).resolve().parents[3] / "dbt_project"
WAREHOUSE_DAG_ID = "warehouse__build"
DOC = """### warehouse__build

Builds the warehouse with dbt: seeds (reference lists and every tunable number), staging views of every
raw table (personal data hashed), intermediate models, and the marts BI tools read (`marts.*`), with
their tests. First, **ensure_raw_tables** creates, empty, the raw table of every catalog feed never
ingested (its marts stay empty until it loads) and logs which feeds have never loaded a batch, and which
readers' roles do not exist yet (each mart is granted to those that exist as it is built).
{how} Runs whenever an `ingest__<feed>` DAG publishes a new batch of its raw table; `EDW_BUILD_MODE`
(`build`, `cosmos`, `watcher`; default `{default}`) says how it runs dbt.

Such a run first **waits for ingest**: while ingest DAG runs are queued or running (the day's feeds start
together), it looks again every few seconds without holding a slot, for at most `[build]
wait_for_ingest_minutes` of `pipeline.toml`, so the day is built once; it is skipped when the last
successful build (`audit.builds`) already saw every loaded batch. A run triggered by hand builds at once.
"""
HOW = {
    "build": "**dbt_build** then runs one `dbt build`, as `edw build` does from the command line (dbt's "
    "log in the task's log and `$EDW_DATA_DIR/dbt/logs`).",
    "cosmos": "Rendered by astronomer-cosmos: one task per model with its tests, each a dbt invocation of "
    "its own. `edw build` runs the same build in one `dbt build` from the command line.",
    "watcher": "Rendered by astronomer-cosmos in watcher mode: **dbt_producer_watcher** runs one `dbt "
    "build`, and a task per model (deferred to the triggerer) turns green or red as dbt finishes it.",
}


def _dag_args(mode: str) -> dict:
    return {
        "dag_id": WAREHOUSE_DAG_ID,
        "schedule": AssetAny(*(raw_asset(feed) for feed in all_feeds())),
        "start_date": pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["warehouse", "dbt", f"build_mode:{mode}"],
        "doc_md": DOC.format(how=HOW[mode], default=DEFAULT_BUILD_MODE),
        "default_args": {
            "owner": "data-platform",
            "retries": RETRIES,
            "retry_delay": dt.timedelta(seconds=RETRY_DELAY_SECONDS),
            "on_failure_callback": on_failure,
        },
    }


def build_warehouse_dag(mode: str | None = None):
    """``warehouse__build`` in the build mode given, else ``EDW_BUILD_MODE``'s."""
    mode = mode or build_mode()
    dag = _one_build_task_dag() if mode == "build" else _cosmos_dag(watcher=mode == "watcher")
    _raw_tables_first(dag)
    _wait_for_ingest_first(dag)
    return dag


def _one_build_task_dag():
    """One task, ``dbt_build``: the production build of ``edw build`` (no unit tests), in the task's process."""
    from airflow.sdk import DAG, get_current_context, task

    with DAG(**_dag_args("build")) as dag:

        @task(task_id="dbt_build")
        def dbt_build() -> dict:
            from .builds import production_build

            run_id = get_current_context()["dag_run"].run_id
            run = production_build(f"{WAREHOUSE_DAG_ID} {run_id}", quiet=True)
            failed = run.failed
            if not run.success:
                nodes = "; ".join(f"{r['node']} {r['status']}: {r['message']}" for r in failed[:10])
                raise RuntimeError(
                    f"dbt build failed ({len(failed)} of {len(run.results)} nodes): {nodes or run.error}; "
                    "dbt's log: $EDW_DATA_DIR/dbt/logs/dbt.log"
                )
            return {"nodes": len(run.results)}

        dbt_build()
    return dag


def _cosmos_dag(watcher: bool):
    from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, LoadMode, TestBehavior

    from ..config import settings
    from ..transform import dbt_environment

    # `edw build` leaves the manifest here; without one, Cosmos parses the project's files itself.
    manifest = Path(
        os.environ.get("EDW_DBT_MANIFEST", settings().data_dir / "dbt" / "target" / "manifest.json")
    )
    env = dbt_environment()
    target = env["EDW_DBT_TARGET"]
    return DbtDag(
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=manifest if manifest.exists() else None,
            env_vars=env,
        ),
        profile_config=ProfileConfig(
            profile_name="emergency_dw",
            target_name=target,
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if watcher else ExecutionMode.LOCAL,
            dbt_executable_path=str(Path(os.sys.executable).with_name("dbt")),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if manifest.exists() else LoadMode.CUSTOM,
            test_behavior=TestBehavior.AFTER_EACH,
        ),
        operator_args={"install_deps": False},
        **_dag_args("watcher" if watcher else "cosmos"),
    )


def _raw_tables_first(dag) -> None:
    """Put ``ensure_raw_tables`` upstream of every dbt task: dbt's staging views read every raw table."""
    import logging

    from airflow.sdk import task

    roots = list(dag.roots)
    with dag:

        @task(task_id="ensure_raw_tables")
        def ensure_raw_tables() -> dict:
            from ..transform import describe_raw_tables, missing_readers, prepare_raw_tables

            prepared = prepare_raw_tables()
            notice = missing_readers()
            for line in [*describe_raw_tables(prepared), *([notice] if notice else [])]:
                logging.getLogger(__name__).warning("warehouse__build: %s", line)
            return {"created": prepared.created, "never_loaded": prepared.never_loaded}

        first = ensure_raw_tables()
    for root in roots:
        first >> root


def _wait_for_ingest_first(dag) -> None:
    """Put ``wait_for_ingest`` upstream of everything: a run the scheduler started on asset events waits
    (rescheduled, holding no slot) while ingest DAG runs are queued or running, at most ``[build]
    wait_for_ingest_minutes``, and is skipped when the last successful build saw every batch loaded
    (pipeline/builds.py). A run triggered by hand builds at once."""
    import logging

    from airflow.sdk import PokeReturnValue, get_current_context, task

    from .pipeline_settings import build_wait_settings

    wait = build_wait_settings()
    ingest_dag_ids = [f"ingest__{feed.name}" for feed in all_feeds()]
    roots = list(dag.roots)
    with dag:

        @task.sensor(
            task_id="wait_for_ingest",
            mode="reschedule",
            poke_interval=wait.poke_seconds,
            timeout=wait.wait_for_ingest_minutes * 60 + 600,  # the wait itself ends by the verdict below
        )
        def wait_for_ingest() -> PokeReturnValue:
            import datetime as dt

            from airflow.sdk.exceptions import AirflowSkipException

            from ..config import settings
            from ..warehouse import connect
            from .builds import nothing_new_since, scheduled_build_verdict

            log = logging.getLogger(__name__)
            context = get_current_context()
            run = context["dag_run"]
            if getattr(run.run_type, "value", run.run_type) != "asset_triggered":
                return PokeReturnValue(
                    is_done=True, xcom_value="a run not started by asset events builds at once"
                )
            ti = context["ti"]
            busy = [d for d in ingest_dag_ids if ti.get_dr_count(dag_id=d, states=["queued", "running"])]
            waited = (dt.datetime.now(dt.UTC) - run.start_date).total_seconds() if run.start_date else 0.0

            def nothing_new():
                warehouse = connect(settings().warehouse_url)
                try:
                    return nothing_new_since(warehouse)
                finally:
                    warehouse.close()

            verdict = scheduled_build_verdict(busy, waited, wait.wait_for_ingest_minutes * 60, nothing_new)
            log.info("warehouse__build: %s (%s)", verdict.action, verdict.why)
            if verdict.action == "skip":
                raise AirflowSkipException(verdict.why)
            return PokeReturnValue(is_done=verdict.action == "build", xcom_value=verdict.why)

        first = wait_for_ingest()
    for root in roots:
        first >> root
