"""DAG integrity: the DagBag parses fast and clean, and each feed's DAG is complete; one runs for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emergency_dw import catalog

from conftest import DAY

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("airflow")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS), safe_mode=True)
    return bag, time.perf_counter() - started


def test_dagbag_imports_without_errors_in_under_5_seconds(dagbag):
    bag, seconds = dagbag
    assert bag.import_errors == {}
    assert seconds < 5, f"the DAG folder took {seconds:.1f} s to parse"
    for path in DAGS.glob("*.py"):
        text = path.read_text().lower()
        assert "airflow" in text and "dag" in text, f"{path.name} would be skipped by the DagBag's safe mode"


def test_one_ingest_dag_per_feed_with_tags_retries_docs_callback_and_asset(dagbag):
    bag, _ = dagbag
    for feed in catalog.FEEDS:
        dag = bag.dags[f"ingest__{feed.name}"]
        assert dag.tags and "ingest" in dag.tags and feed.department in dag.tags
        assert type(dag.timetable).__name__ == "CronDataIntervalTimetable", feed.name
        assert dag.timetable.expression in (feed.schedule, "0 0 * * *"), feed.name
        assert dag.doc_md and feed.name in dag.doc_md
        doc = " ".join(dag.doc_md.split())  # as rendered
        assert f"more than {feed.max_age_days:,} days before the day" in doc, feed.name
        assert [t.task_id for t in dag.tasks] == ["extract_and_land", "validate_and_load"]
        for task in dag.tasks:
            assert task.retries >= 2
            assert task.on_failure_callback
        outlets = dag.get_task("validate_and_load").outlets
        assert [o.name for o in outlets] == [f"raw.{feed.name}"]


def test_a_scheduled_or_backfilled_run_of_day_d_loads_the_batch_of_day_d(dagbag):
    """Airflow 3 reads a bare cron string as a trigger timetable with an empty data interval; the DAGs
    schedule local-day data intervals instead, so the run Airflow makes for logical date D (a scheduled
    run, or `airflow backfill create --from-date D`) extracts [D 00:00, D+1 00:00) Asia/Shanghai: batch D."""
    import datetime as dt

    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    from emergency_dw.pipeline.ingest import batch_id_for, day_interval

    bag, _ = dagbag
    feed = catalog.get_feed("alerts_110")
    timetable = coerce_to_core_timetable(bag.dags["ingest__alerts_110"].timetable)
    shanghai = pendulum.timezone("Asia/Shanghai")
    runs = []
    after = None
    for _ in range(3):  # the first three runs from 2026-11-24 on, as a backfill would make them
        info = timetable.next_dagrun_info(
            last_automated_data_interval=after,
            restriction=TimeRestriction(
                earliest=pendulum.datetime(2026, 11, 24, tz=shanghai), latest=None, catchup=True
            ),
        )
        after = info.data_interval
        runs.append(info)
    days = [dt.date(2026, 11, 24) + dt.timedelta(days=k) for k in range(3)]
    for info, day in zip(runs, days, strict=True):
        assert info.logical_date == pendulum.datetime(day.year, day.month, day.day, tz=shanghai)
        start, end = info.data_interval
        assert (start, end) == day_interval(day)
        assert info.run_after == end, "the run starts once its day is over"
        assert batch_id_for(feed, start, end) == f"alerts_110:{day}"


@pytest.mark.parametrize("wanted", ["ingest__power_load_readings", "warehouse__build"])
def test_a_parse_for_one_dags_task_builds_that_dag_only(wanted: str, tmp_path: Path):
    # what a worker (or dag.test() under `edw run`) parses before running one DAG's task
    code = (
        "from airflow.dag_processing.dagbag import DagBag; import sys; "
        "bag = DagBag(dag_folder=sys.argv[1], safe_mode=True); "
        "print(sorted(bag.dag_ids)); print(bag.import_errors)"
    )
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path), _AIRFLOW_PARSING_CONTEXT_DAG_ID=wanted)
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS)], capture_output=True, text=True, check=True, env=env
    )
    dag_ids, errors = out.stdout.strip().splitlines()[-2:]
    assert dag_ids == str([wanted]) and errors == "{}", out.stdout[-2000:]


def test_dag_files_do_no_io_or_heavy_imports_at_parse_time():
    code = (
        "import sys, time; t=time.perf_counter(); import runpy; runpy.run_path(sys.argv[1]); "
        "heavy=[m for m in ('pandas','pyarrow','great_expectations','duckdb','httpx','sqlalchemy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "ingest.py")], capture_output=True, text=True, check=True
    )
    heavy = set(filter(None, out.stdout.strip().splitlines()[-1].split(",")))
    assert not heavy & {"pandas", "pyarrow", "great_expectations", "duckdb"}, heavy  # httpx: Airflow's own


def test_edw_ingest_runs_the_dag_for_real(simulated: Path, tmp_path: Path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(simulated, data / "sources")
    env = dict(os.environ, EDW_DATA_DIR=str(data), AIRFLOW_HOME=str(tmp_path / "airflow"))
    env.pop("EDW_WAREHOUSE_URL", None)
    for feed in ("boiler_inventory", "alerts_119"):
        out = subprocess.run(
            [sys.executable, "-m", "emergency_dw.cli", "ingest", feed, "--date", DAY.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{feed}" in out.stdout and "yes" in out.stdout  # the batch table shows it reconciles
    processed = list((data / "sources" / "drop" / "sthjj" / "boiler_inventory" / "processed").glob("*.csv"))
    assert processed, "a loaded file moves to processed/"
    import duckdb

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    rows = con.sql("select feed, status from audit.batches order by feed").fetchall()
    assert rows == [("alerts_119", "loaded"), ("boiler_inventory", "loaded")]
    con.close()


def test_warehouse_build_dag_is_scheduled_on_the_raw_assets(dagbag):
    from emergency_dw.pipeline.build_mode import DEFAULT_BUILD_MODE

    bag, _ = dagbag
    dag = bag.dags["warehouse__build"]
    assert dag.tags and dag.doc_md and dag.default_args["retries"] >= 2
    assert f"build_mode:{DEFAULT_BUILD_MODE}" in dag.tags, "EDW_BUILD_MODE unset: the default mode"
    scheduled_on = {asset.name for asset in dag.timetable.asset_condition.objects}
    assert {f"raw.{f.name}" for f in catalog.FEEDS} <= scheduled_on
    assert dag.max_active_runs == 1


@pytest.mark.parametrize("mode", ["build", "cosmos", "watcher"])
def test_warehouse_build_creates_the_raw_tables_first_then_runs_dbt_in_each_build_mode(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Each way of running dbt (EDW_BUILD_MODE): the wait for the day's ingest runs (rescheduled: it holds
    no slot while it waits), ensure_raw_tables, then one `dbt build` task (build), a task per model with its
    tests (cosmos), or one `dbt build` watched per model (watcher)."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))  # no manifest: Cosmos parses the project
    monkeypatch.setenv("EDW_BUILD_MODE", mode)
    from emergency_dw.pipeline.build_dag import build_warehouse_dag

    dag = build_warehouse_dag()
    assert f"build_mode:{mode}" in dag.tags and f"`{mode}`" in dag.doc_md
    assert [t.task_id for t in dag.roots] == ["wait_for_ingest"]
    wait = dag.get_task("wait_for_ingest")
    assert wait.mode == "reschedule" and [t.task_id for t in wait.downstream_list] == ["ensure_raw_tables"]
    after = {t.task_id for t in dag.get_task("ensure_raw_tables").get_flat_relatives(upstream=False)}
    staging = {f"stg_{f.department}__{f.name}_run" for f in catalog.FEEDS}
    if mode == "build":
        assert {t.task_id for t in dag.tasks} == {"wait_for_ingest", "ensure_raw_tables", "dbt_build"}
        assert after == {"dbt_build"}
    else:
        assert staging <= after, "a task per staging model, after the raw tables exist"
    if mode == "watcher":
        producer = dag.get_task("dbt_producer_watcher")
        assert dag.get_task("ensure_raw_tables") in producer.upstream_list
        assert staging <= {t.task_id for t in producer.get_flat_relatives(upstream=False)}
    for task in dag.tasks:
        assert task.retries >= 2 or task.task_id == "dbt_producer_watcher", task.task_id


def test_an_unknown_build_mode_names_the_known_ones(monkeypatch: pytest.MonkeyPatch):
    from emergency_dw.pipeline.build_mode import build_mode

    monkeypatch.setenv("EDW_BUILD_MODE", "dbt_cloud")
    with pytest.raises(ValueError, match="EDW_BUILD_MODE='dbt_cloud'.*build, cosmos, watcher"):
        build_mode()


def test_edw_backfill_of_two_days_equals_two_daily_runs(tmp_path: Path):
    import shutil

    from emergency_dw.simulator.run import Simulator

    days = ["2026-11-25", "2026-11-26"]
    sources = tmp_path / "sources"
    sim = Simulator(sources, scale=0.005)
    for day in days:
        sim.simulate_day(
            __import__("datetime").date.fromisoformat(day), feeds=["alerts_119", "boiler_inventory"]
        )
    results = {}
    for mode in ("daily", "backfill"):
        data = tmp_path / mode
        shutil.copytree(sources, data / "sources")
        env = dict(os.environ, EDW_DATA_DIR=str(data), AIRFLOW_HOME=str(tmp_path / f"airflow-{mode}"))
        env.pop("EDW_WAREHOUSE_URL", None)
        feeds = ["--feed", "alerts_119", "--feed", "boiler_inventory"]
        if mode == "daily":
            commands = [
                ["backfill", "--from", d, "--to", d, *feeds, "--no-build"] for d in days
            ]  # one run a day
        else:
            commands = [["backfill", "--from", days[0], "--to", days[-1], *feeds, "--no-build"]]
        for command in commands:
            out = subprocess.run(
                [sys.executable, "-m", "emergency_dw.cli", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        import duckdb

        con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        results[mode] = (
            con.sql(
                "select batch_id, status, rows_extracted, rows_loaded, rows_quarantined, checksum from audit.batches order by batch_id"
            ).fetchall(),
            con.sql(
                "select incident_id, received_at, _batch_id from raw.alerts_119 order by incident_id"
            ).fetchall(),
            con.sql(
                "select boiler_id, _batch_id from raw.boiler_inventory order by _batch_id, boiler_id"
            ).fetchall(),
        )
        con.close()
    assert len(results["daily"][0]) == 2 * len(days)  # a batch per feed and day
    assert results["backfill"] == results["daily"]


def test_the_dag_files_never_import_the_stand_in_world():
    """DESIGN section 2: a deployment against real departments parses the DAG files without the simulator.
    (The package's own import rules are checked by lint-imports in `make test`: .importlinter.)"""
    import ast

    forbidden = (
        "emergency_dw.simulator",
        "emergency_dw.embedded",
        "edw_bench",
        "emergency_dw.evaluation",
        "emergency_dw.cli",
    )
    files = sorted((Path(__file__).resolve().parents[1] / "dags").glob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith(forbidden)]
            assert not bad, f"{path.name} imports {bad}"
