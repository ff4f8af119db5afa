"""The processes the benchmark runs its stages in: ``edw simulate`` and ``edw build`` as processes of
their own, and a function in a spawned process."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from .figures import BUILD_PEAKS_MB, high_water_mb


@dataclass
class BuildRun:
    success: bool
    seconds: float
    peak_rss_mb: float
    output: str


def simulate_process(day: dt.date, scale: float, feeds: tuple[str, ...] | None = None) -> float:
    """``edw simulate`` of one day in a process of its own (the world is not the pipeline: its memory
    is not the pipeline's); its seconds."""
    return simulate_days(day, 1, scale, feeds)


def simulate_days(first: dt.date, days: int, scale: float, feeds: tuple[str, ...] | None = None) -> float:
    """``edw simulate`` of ``days`` days from ``first`` (of ``feeds``, default every feed) in one process
    of its own; its seconds."""
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
            *(arg for feed in feeds or () for arg in ("--feed", feed)),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"bench: simulating {days} days from {first} failed:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return time.perf_counter() - started


def build_process() -> BuildRun:
    """``edw build`` in a process of its own, as Airflow runs the warehouse__build task: its memory
    (dbt's manifest, DuckDB's buffers) is its own and is returned when it ends."""
    import subprocess
    import sys
    import tempfile

    # The bench's days come minutes apart, never while a build runs: each build takes in what was loaded
    # since the last one started, as a day's distance gives in production (dbt_project.yml,
    # load_commit_margin_minutes; with the default hour, every build here would rebuild every day loaded
    # within the hour before it).
    env = dict(
        os.environ, EDW_LOAD_COMMIT_MARGIN_MINUTES=os.environ.get("EDW_LOAD_COMMIT_MARGIN_MINUTES", "0")
    )
    started = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile(mode="w+") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emergency_dw.cli", "build"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while proc.poll() is None:
            peak = max(peak, high_water_mb(proc.pid) or 0.0)
            time.sleep(0.1)
        output.seek(0)
        text = output.read()
    BUILD_PEAKS_MB.append(peak)
    return BuildRun(proc.returncode == 0, time.perf_counter() - started, peak, text[-3000:])


def in_own_process(function: Callable, *args):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
