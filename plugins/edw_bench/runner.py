"""``run_bench``: the stages asked for, in their order, each in the process and data directory it runs
in; the memory figures; the results written to ``$EDW_DATA_DIR/bench/latest.json``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from emergency_dw.config import settings, temporary_environment

from .bi import bench_bi
from .city_day import bench_city_day
from .figures import (
    BUILD_PEAKS_MB,
    PSS_DETAIL,
    TASK_PEAKS_MB,
    Figure,
    MemorySampler,
    memory_figure,
    peak_rss_mb,
    targets,
)
from .history import backfill_days, bench_history
from .load import bench_load
from .processes import in_own_process
from .validation import bench_validation
from .volume import bench_volume

STAGES = ("load", "validation", "volume", "history", "city_day", "bi")


def _load_and_validation(postgres_url: str, scale: float, day: dt.date, stages: tuple[str, ...]):
    """The load and validation stages (in a process of their own: the frames their baselines hold are
    the benchmark's, not the pipeline's); (figures, the process's peak RSS MiB)."""
    figures: list[Figure] = []
    if "load" in stages:
        figures += bench_load(postgres_url, scale, day)
    if "validation" in stages:
        figures += bench_validation(scale, day)
    return figures, peak_rss_mb()


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
    BUILD_PEAKS_MB.clear()
    TASK_PEAKS_MB.clear()
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
        stage_figures, baseline_peak = in_own_process(_load_and_validation, postgres_url, scale, day, stages)
        figures += stage_figures
    try:
        if "volume" in stages:
            with own_directory("volume"), sampler.stage() as memory:
                figures += bench_volume(scale, first, progress)
            figures.append(memory_figure("volume (PSS)", memory["peak_mb"], PSS_DETAIL))
        if "history" in stages or "city_day" in stages or "bi" in stages:
            from emergency_dw.embedded import embedded_sources

            # one world for both: the departments' APIs keep running from the history into the city-day
            with own_directory("run"), embedded_sources(apis_apart=True):
                if "history" in stages:
                    with sampler.stage() as memory:
                        figures += bench_history(scale, first, days, backfill, progress)
                    figures.append(memory_figure("history (PSS)", memory["peak_mb"], PSS_DETAIL))
                if "city_day" in stages:
                    with sampler.stage() as memory:
                        figures += bench_city_day(scale, day, after_history="history" in stages)
                    figures.append(
                        memory_figure(
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
            max(TASK_PEAKS_MB, default=0.0),
            "an ingest task's own process (the power readings' validate_and_load), its pages shared with "
            "its worker included",
        ),
        ("build process", max(BUILD_PEAKS_MB, default=0.0), "edw build (dbt), as warehouse__build runs it"),
    ):
        if peak:
            figures.append(memory_figure(f"{label} (RSS)", peak, detail))
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
