"""The benchmark (``make bench`` / ``edw bench``): every stage against baselines measured in the same run.

Figures, each with its DESIGN section 7 target:
- load: the pipeline's load of a day of power readings into Postgres, against a bare ADBC ingest of the
  same Arrow table into the same database and against ``DataFrame.to_sql`` (timed on a sample and
  extrapolated);
- validation throughput of the power suite (rows/s);
- a city-day, all feeds, simulate -> ingest (every DAG for real) -> dbt build, each stage timed and the
  Airflow overhead shown apart;
- optionally (``--volume``) many days end to end with peak memory;
- the incremental build cost of the last day against the first (``--days``).
Results go to ``$EDW_DATA_DIR/bench/latest.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import settings

POWER_ROWS_PER_DAY = 1_378_080


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool | None  # None: informational, no target
    detail: str = ""


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _power_arrow(scale: float, day: dt.date):
    """A day of power readings, typed as the pipeline loads them."""
    from .catalog import get_feed
    from .pipeline.ingest import _arrow
    from .pipeline.parse import parse_batch
    from .pipeline.tables import raw_columns
    from .simulator.generators import generate_day
    from .simulator.run import Simulator

    sim = Simulator(settings().data_dir / "bench" / "sources", scale=scale)
    frame = generate_day(sim.ctx, "power_load_readings", day).frame
    import pyarrow as pa

    feed = get_feed("power_load_readings")
    parsed = parse_batch(feed, pa.Table.from_pandas(frame, preserve_index=False))
    typed = parsed.frame
    typed["_batch_id"] = "bench"
    typed["_loaded_at"] = typed["updated_at"]
    typed["_source"] = "bench"
    return feed, parsed, _arrow(typed, raw_columns(feed))


def bench_load(postgres_url: str, scale: float, day: dt.date) -> list[Figure]:
    import adbc_driver_postgresql.dbapi as adbc
    import sqlalchemy as sa

    from .pipeline.tables import RAW, raw_columns
    from .warehouse import connect

    feed, parsed, table = _power_arrow(scale, day)
    rows = table.num_rows
    name = f"edw_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        warehouse = connect(url)
        warehouse.ensure_schema(RAW)
        warehouse.ensure_table(RAW, feed.name, raw_columns(feed))
        started = time.perf_counter()
        with warehouse.transaction() as tx:
            tx.replace_rows(RAW, feed.name, "_batch_id", "bench", table)
        pipeline_seconds = time.perf_counter() - started
        warehouse.close()

        with adbc.connect(url) as conn, conn.cursor() as cur:
            started = time.perf_counter()
            cur.adbc_ingest("bare_power", table, mode="create")
            conn.commit()
            bare_seconds = time.perf_counter() - started

        sample = min(rows, 50_000)
        frame = table.slice(0, sample).to_pandas()
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        started = time.perf_counter()
        frame.to_sql("to_sql_power", engine, if_exists="replace", index=False, chunksize=10_000)
        to_sql_seconds = (time.perf_counter() - started) * rows / sample
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
    ratio = pipeline_seconds / bare_seconds
    speedup = to_sql_seconds / pipeline_seconds
    return [
        Figure(
            "load: pipeline (replace_rows, ADBC COPY)",
            pipeline_seconds,
            "s",
            "",
            None,
            f"{rows:,} power rows into Postgres",
        ),
        Figure("load: bare ADBC ingest", bare_seconds, "s", "", None, "same Arrow table, same database"),
        Figure(
            "load: DataFrame.to_sql (extrapolated)",
            to_sql_seconds,
            "s",
            "",
            None,
            f"timed on {sample:,} rows",
        ),
        Figure("load vs bare ingest", ratio, "x", "<= 1.25x", ratio <= 1.25),
        Figure("load vs to_sql", speedup, "x faster", ">= 15x", speedup >= 15),
    ]


def bench_validation(scale: float, day: dt.date) -> list[Figure]:
    from .pipeline.ingest import _resolve_rules, day_interval
    from .pipeline.tables import ensure_pipeline_tables
    from .pipeline.validate import run_suite
    from .warehouse import connect

    feed, parsed, _ = _power_arrow(scale, day)
    # the suite as a batch of that day runs it (an empty warehouse: no reference set, no history yet)
    warehouse = connect("duckdb:///:memory:")
    ensure_pipeline_tables(warehouse, feed)
    rules = _resolve_rules(warehouse, feed, "bench", parsed.frame, day_interval(day))
    warehouse.close()
    run_suite("warm-up", parsed.frame.head(1000), rules)
    started = time.perf_counter()
    run_suite("bench", parsed.frame, rules)
    seconds = time.perf_counter() - started
    rows = len(parsed.frame)
    return [
        Figure(
            "validation: power suite",
            rows / seconds,
            "rows/s",
            "",
            None,
            f"{len(rules)} rules on {rows:,} rows in {seconds:.1f} s",
        )
    ]


def bench_city_day(scale: float, day: dt.date) -> list[Figure]:
    """Simulate, ingest every feed through its DAG (dag.test), build; stages and Airflow overhead."""
    from .catalog import all_feeds
    from .embedded import airflow_environment, embedded_sources
    from .simulator.run import Simulator
    from .transform import run_dbt

    airflow_environment()
    from .runner import run_ingest_dag

    started = time.perf_counter()
    Simulator(settings().sources_dir, scale=scale).simulate_day(day)
    simulate_seconds = time.perf_counter() - started
    dag_seconds = work_seconds = 0.0
    with embedded_sources():
        for feed in all_feeds():
            outcome = run_ingest_dag(feed.name, day)
            dag_seconds += outcome.seconds
            b = outcome.batch or {}
            work_seconds += sum(
                float(b.get(k) or 0.0) for k in ("extract_seconds", "validate_seconds", "load_seconds")
            )
    started = time.perf_counter()
    build = run_dbt(["build"])
    build_seconds = time.perf_counter() - started
    pipeline = work_seconds + build_seconds
    return [
        Figure("city-day: simulate sources", simulate_seconds, "s", "", None, f"scale {scale}"),
        Figure(
            "city-day: ingest, pipeline work",
            work_seconds,
            "s",
            "",
            None,
            "extract + validate + load, all feeds",
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
            "city-day: pipeline work, extract -> marts",
            pipeline,
            "s",
            "< 60 s" if scale >= 1 else "",
            pipeline < 60 if scale >= 1 else None,
        ),
    ]


def run_bench(
    postgres_url: str,
    scale: float = 1.0,
    day: dt.date | None = None,
    stages: tuple[str, ...] = ("load", "validation", "city_day"),
) -> list[Figure]:
    day = day or dt.date(2026, 11, 27)
    figures: list[Figure] = []
    if "load" in stages:
        figures += bench_load(postgres_url, scale, day)
    if "validation" in stages:
        figures += bench_validation(scale, day)
    if "city_day" in stages:
        figures += bench_city_day(scale, day)
    figures.append(Figure("peak memory (RSS)", _peak_rss_mb(), "MiB", "< 2048 MiB", _peak_rss_mb() < 2048))
    out = settings().data_dir / "bench" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "scale": scale,
                "day": day.isoformat(),
                "cpus": os.cpu_count(),
                "figures": [asdict(f) for f in figures],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return figures


def latest_path() -> Path:
    return settings().data_dir / "bench" / "latest.json"
