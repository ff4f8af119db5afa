"""Stage load: the pipeline's load of a day of power readings into Postgres, against a bare ADBC ingest
of the same Arrow table into the same database and against ``DataFrame.to_sql`` (timed on a sample and
extrapolated)."""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
import time
import uuid

from emergency_dw.config import settings

from .figures import Figure, targets

POWER_ROWS_PER_DAY = 1_378_080


def power_arrow(scale: float, day: dt.date):
    """A day of power readings, typed as the pipeline loads them."""
    from emergency_dw.catalog import get_feed
    from emergency_dw.pipeline.ingest import arrow_table
    from emergency_dw.pipeline.parse import parse_batch
    from emergency_dw.pipeline.tables import raw_columns
    from emergency_dw.simulator.generators import generate_day
    from emergency_dw.simulator.run import Simulator

    sim = Simulator(settings().data_dir / "bench" / "sources", scale=scale)
    frame = generate_day(sim.ctx, "power_load_readings", day).frame
    import pyarrow as pa

    feed = get_feed("power_load_readings")
    parsed = parse_batch(feed, pa.Table.from_pandas(frame, preserve_index=False))
    typed = parsed.frame
    typed["_batch_id"] = "bench"
    typed["_loaded_at"] = typed["updated_at"]
    typed["_source"] = "bench"
    return feed, parsed, arrow_table(typed, raw_columns(feed))


def _driver_version(driver: str) -> str:
    from importlib import metadata

    for distribution in {"psycopg": ("psycopg",), "psycopg2": ("psycopg2-binary", "psycopg2")}.get(
        driver, ()
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(distribution)
    return ""


def bench_load(postgres_url: str, scale: float, day: dt.date) -> list[Figure]:
    import adbc_driver_postgresql.dbapi as adbc
    import sqlalchemy as sa

    from emergency_dw.pipeline.tables import RAW, ensure_batch_partition, ensure_raw_table
    from emergency_dw.warehouse import connect

    feed, parsed, table = power_arrow(scale, day)
    rows = table.num_rows
    name = f"edw_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    rounds = max(1, int(targets()["load"].get("rounds", 3)))
    pipeline_runs: list[float] = []
    analyze_runs: list[float] = []
    bare_runs: list[float] = []
    to_sql_runs: list[float] = []
    sample = min(rows, 50_000)
    try:
        # the driver SQLAlchemy picks for postgresql:// (psycopg 3 since SQLAlchemy 2.1), as a user gets
        engine = sa.create_engine(url)
        warehouse = connect(url)
        warehouse.ensure_schema(RAW)
        ensure_raw_table(warehouse, feed)  # as the pipeline creates it: partitioned by batch
        frame = table.slice(0, sample).to_pandas()
        # Each way runs `rounds` times into an empty table, the ways taking turns; the medians are
        # compared (one run each swung the ratio by a fifth from run to run: WAL, checkpoints, caches).
        for _ in range(rounds):
            with engine.begin() as conn:
                conn.execute(sa.text(f'truncate "{RAW}"."{feed.name}"'))
                conn.execute(sa.text("drop table if exists bare_power"))
            started = time.perf_counter()
            # what a load of the batch does: its partition, the replace in one transaction; then, after the
            # commit, the partition's statistics (timed apart: the bare ingest gathers none)
            ensure_batch_partition(warehouse, feed, "bench")
            with warehouse.transaction() as tx:
                tx.replace_rows(RAW, feed.name, "_batch_id", "bench", table)
            pipeline_runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            warehouse.refresh_statistics(RAW, feed.name, "bench")
            analyze_runs.append(time.perf_counter() - started)

            with adbc.connect(url) as conn, conn.cursor() as cur:
                started = time.perf_counter()
                cur.adbc_ingest("bare_power", table, mode="create")
                conn.commit()
                bare_runs.append(time.perf_counter() - started)

            started = time.perf_counter()
            frame.to_sql("to_sql_power", engine, if_exists="replace", index=False)
            to_sql_runs.append((time.perf_counter() - started) * rows / sample)
        warehouse.close()
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
    pipeline_seconds, bare_seconds, to_sql_seconds = (
        statistics.median(runs) for runs in (pipeline_runs, bare_runs, to_sql_runs)
    )
    spread = f"median of {rounds} runs, {min(pipeline_runs):.2f}-{max(pipeline_runs):.2f} s"
    ratio = pipeline_seconds / bare_seconds
    speedup = to_sql_seconds / pipeline_seconds
    goal = targets()["load"]
    return [
        Figure(
            "load: pipeline (replace_rows, ADBC COPY)",
            pipeline_seconds,
            "s",
            "",
            None,
            f"{rows:,} power rows into their partition of raw; {spread}",
        ),
        Figure(
            "load: ANALYZE of the batch's partition",
            statistics.median(analyze_runs),
            "s",
            "",
            None,
            f"after the load commits, so the next build plans with the day counted; median of {rounds} runs",
        ),
        Figure(
            "load: bare ADBC ingest",
            bare_seconds,
            "s",
            "",
            None,
            f"same Arrow table, same database; median of {rounds} runs, "
            f"{min(bare_runs):.2f}-{max(bare_runs):.2f} s",
        ),
        Figure(
            "load: DataFrame.to_sql (extrapolated)",
            to_sql_seconds,
            "s",
            "",
            None,
            f"timed on {sample:,} rows; median of {rounds} runs; SQLAlchemy's default driver for "
            f"postgresql:// here, {engine.dialect.driver} {_driver_version(engine.dialect.driver)}",
        ),
        Figure(
            "load: DataFrame.to_sql vs bare ingest",
            to_sql_seconds / bare_seconds,
            "x",
            "",
            None,
            "how much slower to_sql is than the bare ingest: the most a load that is itself a COPY can gain",
        ),
        Figure(
            "load vs bare ingest",
            ratio,
            "x",
            f"<= {goal['max_ratio_to_bare_ingest']}x",
            ratio <= goal["max_ratio_to_bare_ingest"],
        ),
        Figure(
            "load vs to_sql",
            speedup,
            "x faster",
            f">= {goal['min_speedup_over_to_sql']}x",
            speedup >= goal["min_speedup_over_to_sql"],
        ),
    ]
