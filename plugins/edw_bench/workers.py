"""Ingest workers: every feed's batch of a day through the pipeline's two task functions, a few workers
side by side, each task in a process forked from its worker (the volume and history stages)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator

from .figures import TASK_PEAKS_MB, high_water_mb, targets


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
                pickle.dump((*outcome, high_water_mb(os.getpid()) or 0.0), pipe)
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
    from emergency_dw.pipeline.ingest import extract_and_land

    return extract_and_land(feed_name, start, end).to_xcom()


def _load_task(landed: dict) -> None:
    from emergency_dw.pipeline.ingest import BatchFailed, validate_and_load

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

    from emergency_dw.pipeline import ingest, validate  # noqa: F401

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

    def ingest_day(self, day: dt.date, only: tuple[str, ...] | None = None) -> tuple[int, float]:
        """(records extracted, seconds until the day's last batch was loaded) of every feed, or of
        ``only`` these."""
        from concurrent.futures import as_completed

        from emergency_dw.catalog import all_feeds
        from emergency_dw.pipeline.ingest import day_interval

        start, end = day_interval(day)
        names = [f.name for f in all_feeds() if only is None or f.name in only]
        feeds = sorted(names, key=lambda name: -self._seconds.get(name, 0.0))
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
def ingest_workers() -> Iterator[IngestWorkers]:
    workers = IngestWorkers(int(targets()["ingest"]["workers"]))
    try:
        yield workers
    finally:
        workers.close()
        TASK_PEAKS_MB.append(workers.task_peak_mb)
