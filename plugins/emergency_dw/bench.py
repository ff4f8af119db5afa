"""The benchmark (``make bench`` / ``edw bench``): every stage against baselines measured in the same run.

Figures, each with its DESIGN section 7 target:
- load: the pipeline's load of a day of power readings into Postgres, against a bare ADBC ingest of the
  same Arrow table into the same database and against ``DataFrame.to_sql`` (timed on a sample and
  extrapolated);
- validation throughput of the power suite (rows/s);
- a city-day, all feeds, simulate -> ingest (every DAG for real) -> dbt build, each stage timed and the
  Airflow overhead shown apart;
- the seed's full volume (31.59 M records) end to end as a backfill: every day's batches, feeds side by
  side, then one dbt build;
- day after day, ingest and incremental build: the last day's build against the first (``--days``);
- peak memory of every process;
- the BI queries (``reports/bi_queries.sql``) on the history's warehouse: median and p95 of each, and the
  indexes a Postgres plan uses.
Results go to ``$EDW_DATA_DIR/bench/latest.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import settings, temporary_environment

POWER_ROWS_PER_DAY = 1_378_080
STAGES = ("load", "validation", "volume", "history", "city_day", "bi")
TARGETS_FILE = Path(__file__).with_name("bench.toml")


def targets() -> dict:
    """The targets of DESIGN section 7 and the sizes of the long runs (``bench.toml``; ``EDW_BENCH_TARGETS``
    names another file)."""
    import tomllib

    path = Path(os.environ.get("EDW_BENCH_TARGETS") or TARGETS_FILE)
    with path.open("rb") as handle:
        return tomllib.load(handle)


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool | None  # None: informational, no target
    detail: str = ""


def _peak_rss_mb() -> float:
    """Peak resident memory of this process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Peak RSS of each build process of this bench run (see _build_process), and of each ingest task's
# process (see IngestWorkers).
_BUILD_PEAKS_MB: list[float] = []
_TASK_PEAKS_MB: list[float] = []


@dataclass
class BuildRun:
    success: bool
    seconds: float
    peak_rss_mb: float
    output: str


def _status_mb(pid: int, field: str) -> float | None:
    """A memory figure of /proc/<pid>/status (VmHWM: the process's own peak RSS; VmRSS: its RSS now).
    Linux's RUSAGE_CHILDREN cannot give a child's peak: its ru_maxrss starts at its parent's size at
    fork, so a big parent hides a smaller child."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _high_water_mb(pid: int) -> float | None:
    return _status_mb(pid, "VmHWM")


def _pss_mb(pid: int) -> float:
    """The process's proportional set size (a page shared by n processes counts 1/n in each), from
    /proc/<pid>/smaps_rollup; 0 when it has gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0


def _is_world(process) -> bool:
    """A process of the simulated world (``edw simulate``, ``edw simulate serve``): a department's
    systems, not the pipeline."""
    try:
        command = process.cmdline()
    except Exception:  # noqa: BLE001 - gone or not ours: not counted either way
        return True
    return "emergency_dw.cli" in command and "simulate" in command


class MemorySampler:
    """The pipeline's memory as it runs: the PSS of this process and of its descendants (ingest workers
    and their task processes, build processes) added up every ``interval`` seconds. PSS counts a page
    that forked processes share once in all, where adding up their RSS would count it in each. The
    simulated world's processes are left out. ``stage()`` gives the peak of one stage."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        import psutil

        self._me = psutil.Process()
        self._world: dict[int, bool] = {}
        self.peak_mb = 0.0
        self._stage_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="memory-sampler", daemon=True
        )
        self._thread.start()

    def now_mb(self) -> float:
        import psutil

        total = _pss_mb(self._me.pid)
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in self._world:
                self._world[child.pid] = _is_world(child)
            if not self._world[child.pid]:
                total += _pss_mb(child.pid)
        return total

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            total = self.now_mb()
            self.peak_mb = max(self.peak_mb, total)
            self._stage_peak = max(self._stage_peak, total)

    @contextlib.contextmanager
    def stage(self) -> Iterator[dict]:
        """``{"peak_mb": ...}``, filled in when the block ends: the block's peak."""
        out: dict = {}
        self._stage_peak = self.now_mb()
        try:
            yield out
        finally:
            out["peak_mb"] = max(self._stage_peak, self.now_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def _simulate_process(day: dt.date, scale: float) -> float:
    """``edw simulate`` of one day in a process of its own (the world is not the pipeline: its memory
    is not the pipeline's); its seconds."""
    import subprocess
    import sys

    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "simulate",
            "--date",
            day.isoformat(),
            "--scale",
            str(scale),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench: simulating {day} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started


def _build_process() -> BuildRun:
    """``edw build`` in a process of its own, as Airflow runs the warehouse__build task: its memory
    (dbt's manifest, DuckDB's buffers) is its own and is returned when it ends."""
    import subprocess
    import sys
    import tempfile

    started = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile(mode="w+") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emergency_dw.cli", "build"],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while proc.poll() is None:
            peak = max(peak, _high_water_mb(proc.pid) or 0.0)
            time.sleep(0.1)
        output.seek(0)
        text = output.read()
    _BUILD_PEAKS_MB.append(peak)
    return BuildRun(proc.returncode == 0, time.perf_counter() - started, peak, text[-3000:])


def _power_arrow(scale: float, day: dt.date):
    """A day of power readings, typed as the pipeline loads them."""
    from .catalog import get_feed
    from .pipeline.ingest import arrow_table
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

    from .pipeline.tables import RAW, ensure_batch_partition, ensure_raw_table
    from .warehouse import connect

    feed, parsed, table = _power_arrow(scale, day)
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


def bench_validation(scale: float, day: dt.date) -> list[Figure]:
    from .pipeline.ingest import day_interval, resolve_rules
    from .pipeline.tables import ensure_pipeline_tables
    from .pipeline.validate import run_suite
    from .warehouse import connect

    feed, parsed, _ = _power_arrow(scale, day)
    # the suite as a batch of that day runs it (an empty warehouse: no reference set, no history yet)
    warehouse = connect("duckdb:///:memory:")
    ensure_pipeline_tables(warehouse, feed)
    rules = resolve_rules(warehouse, feed, "bench", parsed.frame, day_interval(day))
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


def _baseline_days() -> int:
    """The power rules' lookback (seed anomaly_thresholds, baseline.lookback_days): the days that say what
    is usual for a day."""
    import csv

    from .transform import DBT_PROJECT

    with (DBT_PROJECT / "seeds" / "anomaly_thresholds.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["rule"], row["parameter"]) == ("baseline", "lookback_days"):
                return int(float(row["value"]))
    raise ValueError("seed anomaly_thresholds has no baseline.lookback_days")


def _in_task_process(task: Callable, *args):
    """``task(*args)`` in a process forked from this (warmed-up, single-threaded) worker, as Airflow's task
    runner runs every task instance in a process of its own: what a task allocates is the system's
    again when it ends. Returns (its result, its peak RSS in MiB); its exception is raised here."""
    import pickle
    import traceback

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the task's process: report, then leave without running the worker's exit handlers
        try:
            os.close(read_end)
            try:
                outcome = ("ok", task(*args))
            except BaseException as exc:  # noqa: BLE001 - carried to the worker, raised there
                outcome = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump((*outcome, _high_water_mb(os.getpid()) or 0.0), pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(
            f"bench: the task process {pid} of {task.__name__}{args[:1]} died (status {status})"
        )
    kind, value, peak = pickle.loads(data)
    if kind == "error":
        raise RuntimeError(f"bench: {task.__name__}{args[:1]} failed in its task process:\n{value}")
    return value, peak


def _extract_task(feed_name: str, start: dt.datetime, end: dt.datetime) -> dict:
    from .pipeline.ingest import extract_and_land

    return extract_and_land(feed_name, start, end).to_xcom()


def _load_task(landed: dict) -> None:
    from .pipeline.ingest import BatchFailed, validate_and_load

    with contextlib.suppress(BatchFailed):  # audited as in a DAG run; its records were read
        validate_and_load(landed)


def _ingest_feed(feed_name: str, start: dt.datetime, end: dt.datetime) -> tuple[str, int, float, float]:
    """One feed's batch through the pipeline's two task functions (what its ingest DAG's tasks call), each
    in a task process of its own, in an ingest worker: (feed, records extracted, seconds, peak RSS MiB
    of its task processes)."""
    started = time.perf_counter()
    landed, extract_peak = _in_task_process(_extract_task, feed_name, start, end)
    _, load_peak = _in_task_process(_load_task, landed)
    return (feed_name, int(landed["rows"]), time.perf_counter() - started, max(extract_peak, load_peak))


def _warm_worker(seconds: float) -> int:
    """Import what a batch needs (Great Expectations takes seconds) before the clock starts, as an
    Airflow worker has before it forks a task; the pause makes each warm-up land on a worker of its own."""
    import gc

    from .pipeline import ingest, validate  # noqa: F401

    validate.gx_context()
    # What the imports made is shared with every task process forked from here; frozen, the task's
    # collections leave it alone (and its pages stay shared instead of being copied)
    gc.collect()
    gc.freeze()
    time.sleep(seconds)
    return os.getpid()


class IngestWorkers:
    """Every feed's batch of a day ingested by a few worker processes side by side, as Airflow's worker
    slots run the feeds' ingest DAGs (bench.toml ``[ingest] workers``); each task runs in a process
    forked from its worker, as Airflow's task runner does. The longest batches go first. The embedded
    DuckDB file admits one process at a time, so batches take turns for the moments they read or write
    the warehouse and parse and validate side by side."""

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, wait

        self.workers = workers
        # spawned, not forked from here: a fork of a process that has threads (the memory sampler's) may
        # hang; the workers themselves are single-threaded, so they fork their tasks safely
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        wait([self._pool.submit(_warm_worker, 1.0) for _ in range(workers)])
        self._seconds: dict[str, float] = {}
        self.task_peak_mb = 0.0

    def ingest_day(self, day: dt.date) -> tuple[int, float]:
        """(records extracted, seconds until the day's last batch was loaded)."""
        from concurrent.futures import as_completed

        from .catalog import all_feeds
        from .pipeline.ingest import day_interval

        start, end = day_interval(day)
        feeds = sorted((f.name for f in all_feeds()), key=lambda name: -self._seconds.get(name, 0.0))
        started = time.perf_counter()
        records = 0
        for done in as_completed([self._pool.submit(_ingest_feed, name, start, end) for name in feeds]):
            name, rows, seconds, peak = done.result()
            records += rows
            self._seconds[name] = seconds
            self.task_peak_mb = max(self.task_peak_mb, peak)
        return records, time.perf_counter() - started

    def close(self) -> None:
        self._pool.shutdown()


@contextlib.contextmanager
def _ingest_workers() -> Iterator[IngestWorkers]:
    workers = IngestWorkers(int(targets()["ingest"]["workers"]))
    try:
        yield workers
    finally:
        workers.close()
        _TASK_PEAKS_MB.append(workers.task_peak_mb)


def bench_volume(
    scale: float, first_day: dt.date, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """The seed's full volume end to end, as a user loads a month of history: ``edw backfill``'s way,
    each day's batches (one per feed and day, feeds side by side) and then one dbt build. Days are
    simulated as they are needed (the world, timed apart) until the batches held 31.59 M records at
    full scale; the clock runs from the first extract to the marts built."""
    from .embedded import embedded_sources

    goal = targets()
    volume = int(goal["volume"]["records"] * scale)
    records = ingest = simulate = 0.0
    days = 0
    with embedded_sources(apis_apart=True), _ingest_workers() as workers:
        while records < volume:
            day = first_day + dt.timedelta(days=days)
            simulate += _simulate_process(day, scale)
            extracted, seconds = workers.ingest_day(day)
            records += extracted
            ingest += seconds
            days += 1
            if progress:
                progress(
                    f"volume day {days} {day}: {extracted:,} records in {seconds:.1f} s "
                    f"({records / 1e6:.2f} M of {volume / 1e6:.2f} M, ingest so far {ingest:.0f} s)"
                )
    build = _build_process()
    if not build.success:
        raise RuntimeError(f"bench volume: the dbt build of {days} days failed:\n{build.output}")
    seconds = ingest + build.seconds
    limit = goal["volume"]["max_minutes"] * 60
    full = scale >= 1
    return [
        Figure(
            f"volume: {records / 1e6:.2f} M records end to end",
            seconds,
            "s",
            f"< {limit:.0f} s" if full else "",
            seconds < limit if full else None,
            f"{days} days from {first_day}: ingest {ingest:.0f} s ({workers.workers} workers), one build "
            f"{build.seconds:.0f} s",
        ),
        Figure("volume: simulate sources (the world, apart)", simulate, "s", "", None, f"{days} days"),
        Figure(
            "volume: throughput",
            records / seconds,
            "records/s",
            f">= {goal['volume']['records'] / limit:,.0f} records/s" if full else "",
            records / seconds >= goal["volume"]["records"] / limit if full else None,
            "records extracted / seconds end to end",
        ),
    ]


def _simulate_days(first: dt.date, days: int, scale: float) -> float:
    """``edw simulate`` of ``days`` days from ``first`` in one process of its own; its seconds."""
    import subprocess
    import sys

    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "simulate",
            "--date",
            first.isoformat(),
            "--days",
            str(days),
            "--scale",
            str(scale),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"bench: simulating {days} days from {first} failed:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return time.perf_counter() - started


def backfill_days() -> int:
    """Days of history loaded before the daily runs of the history stage: bench.toml ``[history]
    backfill_days``, else the power rules' lookback (seed anomaly_thresholds, baseline.lookback_days)."""
    configured = targets()["history"].get("backfill_days")
    return _baseline_days() if configured is None else int(configured)


def bench_history(
    scale: float,
    first_day: dt.date,
    days: int,
    backfill: int,
    progress: Callable[[str], None] | None = None,
) -> list[Figure]:
    """The platform as it goes live and then runs daily: first the history of the baseline window is
    backfilled (``backfill`` days: every feed's batches, then one build, ``edw backfill``'s way), then
    ``days`` days follow one after another, each simulated (the world, timed apart), ingested (feeds side
    by side) and built incrementally. The incremental build of the last day against the first daily one:
    both compute baselines over a full window, so what differs is the history behind them alone."""
    from .embedded import embedded_sources

    goal = targets()
    per_day: list[dict] = []
    records = pipeline = simulate = 0.0
    backfill_records = backfill_ingest = 0.0
    first_daily = first_day + dt.timedelta(days=backfill)
    with embedded_sources(apis_apart=True), _ingest_workers() as workers:
        if backfill:
            simulate += _simulate_days(first_day, backfill, scale)
            for k in range(backfill):
                extracted, seconds = workers.ingest_day(first_day + dt.timedelta(days=k))
                backfill_records += extracted
                backfill_ingest += seconds
            backfill_build = _build_process()
            if not backfill_build.success:
                raise RuntimeError(
                    f"bench history: the build of the backfill failed:\n{backfill_build.output}"
                )
            if progress:
                progress(
                    f"backfill of {backfill} days from {first_day}: {backfill_records / 1e6:.2f} M records, ingest "
                    f"{backfill_ingest:.0f} s, one build {backfill_build.seconds:.0f} s"
                )
        for k in range(days):
            day = first_daily + dt.timedelta(days=k)
            simulate += _simulate_process(day, scale)
            extracted, ingest_seconds = workers.ingest_day(day)
            build = _build_process()
            if not build.success:
                raise RuntimeError(f"bench history: the dbt build of {day} failed:\n{build.output}")
            records += extracted
            pipeline += ingest_seconds + build.seconds
            per_day.append(
                {
                    "day": day.isoformat(),
                    "records": extracted,
                    "ingest_s": ingest_seconds,
                    "build_s": build.seconds,
                }
            )
            if progress:
                progress(
                    f"day {k + 1}/{days} {day}: {extracted:,} records, ingest {ingest_seconds:.1f} s, "
                    f"build {build.seconds:.1f} s (pipeline so far {pipeline:.0f} s; peak RSS: largest task "
                    f"{workers.task_peak_mb:.0f} MiB, build {max(_BUILD_PEAKS_MB):.0f} MiB)"
                )
    first, last = per_day[0], per_day[-1]
    growth = last["build_s"] / first["build_s"]
    builds = [d["build_s"] for d in per_day]
    figures = []
    if backfill:
        figures.append(
            Figure(
                "history: backfill before the daily runs",
                backfill_ingest + backfill_build.seconds,
                "s",
                "",
                None,
                f"{backfill} day(s) from {first_day} (the baseline window), {backfill_records / 1e6:.2f} M records: "
                f"ingest {backfill_ingest:.0f} s, one build {backfill_build.seconds:.0f} s",
            )
        )
    figures += [
        Figure(
            "history: days ingested and built one by one",
            days,
            "days",
            "",
            None,
            f"from {first_daily}, scale {scale}",
        ),
        Figure("history: records ingested daily", records, "records", "", None, "all feeds, all days"),
        Figure(
            "history: pipeline work",
            pipeline,
            "s",
            "",
            None,
            f"ingest ({workers.workers} workers) + incremental build, every day; builds "
            f"{min(builds):.1f}-{max(builds):.1f} s, median {statistics.median(builds):.1f} s",
        ),
        Figure("history: simulate sources (the world, apart)", simulate, "s", "", None, ""),
        Figure(
            f"incremental build: day {days} vs day 1",
            growth,
            "x",
            f"<= {goal['incremental']['max_growth']}x",
            growth <= goal["incremental"]["max_growth"] if days >= 2 else None,
            f"day 1 {first['build_s']:.1f} s ({backfill} days of history before it), day {days} "
            f"{last['build_s']:.1f} s ({backfill + days - 1} days)",
        ),
    ]
    (settings().data_dir / "history.json").write_text(json.dumps(per_day, indent=2), encoding="utf-8")
    return figures


def _city_day_ingest(day: dt.date) -> tuple[float, float]:
    """Every feed's ingest DAG run for real (dag.test) for the day, one after another, in this process:
    (seconds of the DAG runs, seconds of the pipeline's work in them)."""
    from .airflow_env import airflow_environment
    from .catalog import all_feeds

    airflow_environment()
    from .runner import run_ingest_dag

    dag_seconds = work_seconds = 0.0
    for feed in all_feeds():
        outcome = run_ingest_dag(feed.name, day)
        dag_seconds += outcome.seconds
        b = outcome.batch or {}
        work_seconds += sum(
            float(b.get(k) or 0.0) for k in ("extract_seconds", "validate_seconds", "load_seconds")
        )
    return dag_seconds, work_seconds


def bench_city_day(scale: float, day: dt.date, after_history: bool = False) -> list[Figure]:
    """Simulate, ingest every feed through its DAG (dag.test, in a process of its own, as ``edw ingest
    --all`` runs them), build; stages and Airflow overhead."""
    from .embedded import embedded_sources

    simulate_seconds = _simulate_process(day, scale)
    with embedded_sources(apis_apart=True):
        dag_seconds, work_seconds = _in_own_process(_city_day_ingest, day)
    build = _build_process()
    build_seconds = build.seconds
    pipeline = work_seconds + build_seconds
    limit = targets()["city_day"]["max_pipeline_seconds"]
    where = "the day after the history (a full baseline window)" if after_history else "an empty warehouse"
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
            f"< {limit} s" if scale >= 1 else "",
            pipeline < limit if scale >= 1 else None,
            where,
        ),
    ]


BI_READER_ENV = "EDW_BI_READER_URL"  # Postgres: the warehouse as bi_reader sees it (else the warehouse URL)


def bench_bi(warehouse_url: str) -> list[Figure]:
    """Each query of ``reports/bi_queries.sql`` (what the dashboards and the README's examples send) run
    ``[bi] runs`` times after one warm-up, as a BI tool would: median and p95 wall time with the rows
    fetched, and on Postgres the indexes its plan uses. On Postgres it connects as ``EDW_BI_READER_URL``
    when set (bi_reader), else as the warehouse URL; the embedded DuckDB file is opened read-only."""
    from .reports.bi_queries import bi_queries

    settings_ = targets()["bi"]
    runs, limit = int(settings_["runs"]), float(settings_["max_p95_ms"])
    url = warehouse_url
    if url.startswith(("postgresql://", "postgres://")):
        url = os.environ.get(BI_READER_ENV) or url
        import psycopg

        con = psycopg.connect(url, autocommit=True)

        def run(sql: str) -> int:
            with con.cursor() as cur:
                cur.execute(sql)
                return len(cur.fetchall())

        def indexes(sql: str) -> str:
            with con.cursor() as cur:
                cur.execute(f"explain (format json) {sql}")
                plan = cur.fetchone()[0]
            found = sorted(set(_plan_values(plan, "Index Name")))
            return ", ".join(found) or "none (sequential scans)"
    else:
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)

        def run(sql: str) -> int:
            return len(con.execute(sql).fetchall())

        def indexes(sql: str) -> str:
            return "DuckDB: no indexes (zone maps)"

    figures = []
    try:
        for query in bi_queries():
            rows = run(query.sql)  # warm-up: the first run reads from disk
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                run(query.sql)
                times.append((time.perf_counter() - started) * 1000)
            median, p95 = statistics.median(times), statistics.quantiles(times, n=20, method="inclusive")[-1]
            figures.append(
                Figure(
                    f"bi: {query.name} (p95)",
                    p95,
                    "ms",
                    f"< {limit:g} ms",
                    p95 < limit,
                    f"median {median:.1f} ms over {runs} runs, {rows:,} rows; {query.what}; indexes: {indexes(query.sql)}",
                )
            )
    finally:
        con.close()
    return figures


def _plan_values(node, key: str):
    """Every value of ``key`` anywhere in a Postgres JSON plan."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            else:
                yield from _plan_values(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _plan_values(item, key)


def _load_and_validation(postgres_url: str, scale: float, day: dt.date, stages: tuple[str, ...]):
    """The load and validation stages (in a process of their own: the frames their baselines hold are
    the benchmark's, not the pipeline's); (figures, the process's peak RSS MiB)."""
    figures: list[Figure] = []
    if "load" in stages:
        figures += bench_load(postgres_url, scale, day)
    if "validation" in stages:
        figures += bench_validation(scale, day)
    return figures, _peak_rss_mb()


def _in_own_process(function: Callable, *args):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _memory_figure(stage: str, peak: float, detail: str) -> Figure:
    limit = targets()["memory"]["max_mib"]
    return Figure(f"peak memory: {stage}", peak, "MiB", f"< {limit} MiB", peak < limit, detail)


PSS_DETAIL = (
    "the pipeline's processes added up as they ran at once, sampled every 0.2 s, each page counted once "
    "(PSS: forked task processes share their worker's pages); the simulated world apart"
)


def run_bench(
    postgres_url: str,
    scale: float = 1.0,
    day: dt.date | None = None,
    stages: tuple[str, ...] = STAGES,
    days: int | None = None,
    progress: Callable[[str], None] | None = None,
    backfill: int | None = None,
) -> list[Figure]:
    """The stages asked for; the volume, the history and the city-day run in data directories of their
    own (``$EDW_DATA_DIR/bench/volume``, ``.../bench/run``, made anew), never in the user's warehouse.
    ``day`` is the city-day; the history's daily runs are the ``days`` days before it, after a backfill of
    the baseline window."""
    import shutil

    day = day or dt.date(2026, 11, 27)
    days = days or int(targets()["history"]["days"])
    backfill = backfill_days() if backfill is None else backfill
    out = settings().data_dir / "bench" / "latest.json"
    figures: list[Figure] = []
    _BUILD_PEAKS_MB.clear()
    _TASK_PEAKS_MB.clear()
    sampler = MemorySampler()
    first = day - dt.timedelta(days=days + backfill if "city_day" in stages else days + backfill - 1)

    @contextlib.contextmanager
    def own_directory(name: str):
        run_dir = settings().data_dir / "bench" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        own = {
            "EDW_DATA_DIR": str(run_dir),
            "EDW_WAREHOUSE_URL": None,
            "AIRFLOW_HOME": str(run_dir / "airflow"),
        }
        with temporary_environment(own):
            yield

    baseline_peak = 0.0
    if "load" in stages or "validation" in stages:
        stage_figures, baseline_peak = _in_own_process(_load_and_validation, postgres_url, scale, day, stages)
        figures += stage_figures
    try:
        if "volume" in stages:
            with own_directory("volume"), sampler.stage() as memory:
                figures += bench_volume(scale, first, progress)
            figures.append(_memory_figure("volume (PSS)", memory["peak_mb"], PSS_DETAIL))
        if "history" in stages or "city_day" in stages or "bi" in stages:
            from .embedded import embedded_sources

            # one world for both: the departments' APIs keep running from the history into the city-day
            with own_directory("run"), embedded_sources(apis_apart=True):
                if "history" in stages:
                    with sampler.stage() as memory:
                        figures += bench_history(scale, first, days, backfill, progress)
                    figures.append(_memory_figure("history (PSS)", memory["peak_mb"], PSS_DETAIL))
                if "city_day" in stages:
                    with sampler.stage() as memory:
                        figures += bench_city_day(scale, day, after_history="history" in stages)
                    figures.append(
                        _memory_figure(
                            "city-day (PSS)",
                            memory["peak_mb"],
                            "every ingest DAG run in this process (dag.test), then the build's process",
                        )
                    )
                if "bi" in stages:
                    figures += bench_bi(settings().warehouse_url)
    finally:
        sampler.stop()
    for label, peak, detail in (
        (
            "largest ingest task process",
            max(_TASK_PEAKS_MB, default=0.0),
            "an ingest task's own process (the power readings' validate_and_load), its pages shared with "
            "its worker included",
        ),
        ("build process", max(_BUILD_PEAKS_MB, default=0.0), "edw build (dbt), as warehouse__build runs it"),
    ):
        if peak:
            figures.append(_memory_figure(f"{label} (RSS)", peak, detail))
    if baseline_peak:
        figures.append(
            Figure(
                "peak memory: load and validation stages (RSS)",
                baseline_peak,
                "MiB",
                "",
                None,
                "the benchmark's own process for them: it holds a day of readings as Arrow and pandas "
                "for the baselines",
            )
        )
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
