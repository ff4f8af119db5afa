"""Stage city_day: a city-day, all feeds, simulate -> ingest (every DAG for real) -> dbt build, each stage
timed and the Airflow overhead shown apart."""

from __future__ import annotations

import datetime as dt

from .figures import Figure, feeds_said, targets
from .processes import build_process, in_own_process, simulate_process

CITY_DAY_PIPELINE = "city-day: pipeline work, extract -> marts"


def _city_day_ingest(day: dt.date, feeds: tuple[str, ...] | None = None) -> tuple[float, float]:
    """Every feed's ingest DAG (or ``feeds``') run for real (dag.test) for the day, one after another, in
    this process: (seconds of the DAG runs, seconds of the pipeline's work in them)."""
    from emergency_dw.airflow_env import airflow_environment
    from emergency_dw.catalog import all_feeds

    airflow_environment()
    from emergency_dw.runner import run_ingest_dag

    dag_seconds = work_seconds = 0.0
    for feed in all_feeds():
        if feeds is not None and feed.name not in feeds:
            continue
        outcome = run_ingest_dag(feed.name, day)
        dag_seconds += outcome.seconds
        b = outcome.batch or {}
        work_seconds += sum(
            float(b.get(k) or 0.0) for k in ("extract_seconds", "validate_seconds", "load_seconds")
        )
    return dag_seconds, work_seconds


def bench_city_day(
    scale: float,
    day: dt.date,
    after_history: bool = False,
    warehouse: str = "duckdb",
    feeds: tuple[str, ...] | None = None,
) -> list[Figure]:
    """Simulate, ingest every feed through its DAG (dag.test, in a process of its own, as ``edw ingest
    --all`` runs them), build; stages and Airflow overhead. The pipeline work's target is the
    warehouse's: ``[city_day] max_pipeline_seconds`` on DuckDB, ``[postgres] max_city_day_seconds`` on
    Postgres; judged at full scale with every feed only (``feeds``: only these are simulated and
    ingested)."""
    from emergency_dw.embedded import embedded_sources

    simulate_seconds = simulate_process(day, scale, feeds)
    with embedded_sources(apis_apart=True):
        dag_seconds, work_seconds = in_own_process(_city_day_ingest, day, feeds)
    build = build_process()
    build_seconds = build.seconds
    pipeline = work_seconds + build_seconds
    goal = targets()
    if warehouse == "postgres":
        limit = goal["postgres"]["max_city_day_seconds"]
    else:
        limit = goal["city_day"]["max_pipeline_seconds"]
    full = scale >= 1 and feeds is None
    where = "the day after the history (a full baseline window)" if after_history else "an empty warehouse"
    if not full:
        where += "; time targets are judged at full scale with every feed only"
    return [
        Figure("city-day: simulate sources", simulate_seconds, "s", "", None, f"scale {scale}"),
        Figure(
            "city-day: ingest, pipeline work",
            work_seconds,
            "s",
            "",
            None,
            f"extract + validate + load, {feeds_said(feeds)}",
        ),
        Figure(
            "city-day: ingest, Airflow overhead",
            dag_seconds - work_seconds,
            "s",
            "",
            None,
            "dag.test around the tasks",
        ),
        Figure("city-day: dbt build", build_seconds, "s", "", None, "passed" if build.success else "FAILED"),
        Figure(
            CITY_DAY_PIPELINE,
            pipeline,
            "s",
            f"< {limit:g} s",
            pipeline < limit if full else None,
            where,
        ),
    ]
