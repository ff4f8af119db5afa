"""The ingestion DAG factory: one ``ingest__<feed>`` DAG per catalog feed.

Only the catalog and ``airflow.sdk`` are imported here; the tasks import the pipeline when they run,
so the DagBag parses the whole folder in well under a second per file.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, get_current_context, task

from ..catalog import Feed, department

LOCAL_ZONE = "Asia/Shanghai"  # batches are local days
START_DATE = pendulum.datetime(2026, 1, 1, tz=LOCAL_ZONE)
RETRIES = 2
RETRY_DELAY_SECONDS = int(os.environ.get("EDW_RETRY_DELAY_SECONDS", "120"))


def raw_asset(feed: Feed) -> Asset:
    """The Airflow Asset a feed's DAG publishes: its raw table."""
    return Asset(name=f"raw.{feed.name}", uri=f"edw://warehouse/raw/{feed.name}", group="raw")


def schedule_of(feed: Feed) -> CronDataIntervalTimetable:
    """The feed's schedule as data intervals in local time: the run of logical date D (00:00 local)
    covers [D, D + 1 day) and starts once that day is over, so a scheduled run, a backfill
    (``airflow backfill create --from-date D``) and ``edw ingest --date D`` all load batch ``<feed>:D``.

    Airflow 3 reads a bare cron string as a ``CronTriggerTimetable``, whose data interval is empty
    (start = end = the trigger time): a run would extract nothing. Hence the explicit timetable."""
    return CronDataIntervalTimetable(feed.schedule, timezone=LOCAL_ZONE)


def _interval(context) -> tuple[dt.datetime, dt.datetime]:
    """The run's interval: a ``date`` in the run's conf wins (``edw ingest --date``), else the data interval."""
    conf = (context.get("dag_run") and context["dag_run"].conf) or {}
    if conf.get("date"):
        from .ingest import day_interval

        return day_interval(dt.date.fromisoformat(conf["date"]))
    return context["data_interval_start"], context["data_interval_end"]


def on_failure(context) -> None:
    from .notify import notify_failure

    dag_id = context["dag"].dag_id
    notify_failure(dag_id.removeprefix("ingest__"), str(context.get("exception")), context.get("run_id"))


def build_ingest_dag(feed: Feed) -> DAG:
    owner = department(feed.department)
    ahead = f"{feed.max_ahead_days} day" + ("" if feed.max_ahead_days == 1 else "s")
    doc = f"""### ingest__{feed.name}

{feed.title} from **{owner.name}** ({owner.name_zh}), read through `{feed.connector_kind}`.

Each run handles one local day (Asia/Shanghai): **extract_and_land** pulls the day's records and writes
them as Parquet to `lake/raw/{feed.name}/dt=YYYY-MM-DD/`; **validate_and_load** validates them with the
feed's Great Expectations suite (the catalog's rules and the hand-written ones of
`expectations/{feed.name}.json`, if any), quarantines failing rows in `quarantine.{feed.name}`, loads the
rest into `raw.{feed.name}` atomically and records the batch in `audit.batches`. A rerun of the same day
replaces that day's batch exactly. A record whose event time or last update lies more than
{feed.max_age_days:,} days before the day, or more than {ahead} after it, is quarantined (the catalog's
`max_age_days` and `max_ahead_days` of the feed).

Primary key: `{", ".join(feed.primary_key)}`; about {feed.rows_per_day:,} rows a day at full scale.
"""
    with DAG(
        dag_id=f"ingest__{feed.name}",
        schedule=schedule_of(feed),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["ingest", feed.connector_kind, feed.department, *feed.tags],
        doc_md=doc,
        default_args={
            "owner": owner.code,
            "retries": RETRIES,
            "retry_delay": dt.timedelta(seconds=RETRY_DELAY_SECONDS),
            "retry_exponential_backoff": True,
            "on_failure_callback": on_failure,
        },
    ) as dag:

        @task(task_id="extract_and_land")
        def extract_and_land_task(feed_name: str) -> dict:
            from .ingest import extract_and_land

            start, end = _interval(get_current_context())
            return extract_and_land(feed_name, start, end).to_xcom()

        @task(task_id="validate_and_load", outlets=[raw_asset(feed)])
        def validate_and_load_task(landed: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from .ingest import BatchFailed, validate_and_load

            try:
                result = validate_and_load(landed)
            except BatchFailed as exc:  # the data, not the weather: a retry would fail the same way
                raise AirflowFailException(str(exc)) from exc
            return {
                "batch_id": result.batch_id,
                "status": result.status,
                "rows_extracted": result.rows_extracted,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
            }

        validate_and_load_task(extract_and_land_task(feed.name))
    return dag
