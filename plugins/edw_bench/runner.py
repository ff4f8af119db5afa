"""``run_bench``: the stages asked for, in their order, each in the process and data directory it runs
in; the memory figures; the results written to ``$EDW_DATA_DIR/bench/latest.json``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from emergency_dw.config import settings, temporary_environment

from .bi import BI_READER_ENV, bench_bi
from .city_day import CITY_DAY_PIPELINE, bench_city_day
from .figures import (
    BUILD_PEAKS_MB,
    PSS_DETAIL,
    TARGETS_FILE,
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
from .scheduler import bench_scheduler
from .validation import bench_validation
from .volume import bench_volume
from .warehouses import (
    BENCH_DATABASE,
    WAREHOUSE_STAGES,
    WAREHOUSES,
    bench_database,
    ratio_name,
    reader_url,
)

STAGES = ("load", "validation", "volume", "history", "city_day", "bi", "scheduler")


def _load_and_validation(postgres_url: str, scale: float, day: dt.date, stages: tuple[str, ...]):
    """The load and validation stages (in a process of their own: the frames their baselines hold are
    the benchmark's, not the pipeline's); (figures, the process's peak RSS MiB)."""
    figures: list[Figure] = []
    if "load" in stages:
        figures += [replace(f, warehouse="postgres") for f in bench_load(postgres_url, scale, day)]
    if "validation" in stages:
        figures += bench_validation(scale, day)
    return figures, peak_rss_mb()


def _tagged(figures: list[Figure], warehouse: str) -> list[Figure]:
    for f in figures:
        f.warehouse = warehouse
    return figures


def _on_warehouse(
    warehouse: str,
    scale: float,
    day: dt.date,
    first: dt.date,
    days: int,
    backfill: int,
    stages: tuple[str, ...],
    sampler: MemorySampler,
    progress: Callable[[str], None] | None,
    feeds: tuple[str, ...] | None = None,
) -> list[Figure]:
    """The history, city-day and bi stages asked for, on the warehouse the environment names, in the
    data directory made for it; every figure tagged with ``warehouse``."""
    from emergency_dw.embedded import embedded_sources

    said = (lambda line: progress(f"{warehouse}: {line}")) if progress else None
    # the server's processes are not the benchmark's children: what Postgres itself holds is not counted
    server = "; the Postgres server's own processes are not counted" if warehouse == "postgres" else ""
    figures: list[Figure] = []
    # one world for both: the departments' APIs keep running from the history into the city-day
    with embedded_sources(apis_apart=True):
        if "history" in stages:
            with sampler.stage() as memory:
                figures += bench_history(scale, first, days, backfill, said, feeds)
            figures.append(memory_figure("history (PSS)", memory["peak_mb"], PSS_DETAIL + server))
        if "city_day" in stages:
            with sampler.stage() as memory:
                figures += bench_city_day(
                    scale, day, after_history="history" in stages, warehouse=warehouse, feeds=feeds
                )
            figures.append(
                memory_figure(
                    "city-day (PSS)",
                    memory["peak_mb"],
                    "every ingest DAG run in this process (dag.test), then the build's process" + server,
                )
            )
        if "bi" in stages:
            figures += bench_bi(settings().warehouse_url)
    return _tagged(figures, warehouse)


def run_bench(
    postgres_url: str,
    scale: float = 1.0,
    day: dt.date | None = None,
    stages: tuple[str, ...] = STAGES,
    days: int | None = None,
    progress: Callable[[str], None] | None = None,
    backfill: int | None = None,
    warehouses: tuple[str, ...] = ("duckdb",),
    keep_postgres: bool = False,
    postgres_database: str = BENCH_DATABASE,
    build_modes: tuple[str, ...] | None = None,
    feeds: tuple[str, ...] | None = None,
) -> list[Figure]:
    """The stages asked for; the volume, the history and the city-day run in data directories of their
    own (``$EDW_DATA_DIR/bench/volume``, ``.../bench/run``, made anew), never in the user's warehouse.
    ``day`` is the city-day; the history's daily runs are the ``days`` days before it, after a backfill of
    the baseline window.

    The history, city-day and bi stages run on each of ``warehouses``: on ``duckdb`` the embedded file of
    ``bench/run``; on ``postgres`` the database ``postgres_database`` made anew on the server of
    ``postgres_url`` (dropped at the end unless ``keep_postgres``), from ``bench/run-postgres``. Each
    warehouse's directory simulates its own sources, the same days with the same seed and scale, so both
    ingest the same records.

    The scheduler stage (Postgres only) runs the day due now through Airflow's scheduler once per build
    mode of ``warehouse__build`` in ``build_modes`` (default: every one available), with the ingest DAGs
    of ``feeds`` (default: every feed). The history and city-day stages simulate and ingest ``feeds``
    only, too (the build is the whole project's); their time targets are then shown, not judged."""
    import shutil

    if "postgres" in warehouses and "city_day" in stages:
        _require_targets("postgres", ("max_city_day_seconds", "max_ratio_to_duckdb"))
    if "scheduler" in stages:
        _require_targets("scheduler", ("max_day_end_to_marts_minutes", "max_overhead_share"))
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
    def own_directory(name: str, warehouse_url: str | None = None, bi_reader_url: str | None = None):
        run_dir = settings().data_dir / "bench" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        own = {
            "EDW_DATA_DIR": str(run_dir),
            "EDW_WAREHOUSE_URL": warehouse_url,  # None: the embedded DuckDB file of run_dir
            "EDW_TRANSFORM_WAREHOUSE_URL": None,  # dbt builds the warehouse the loads write to
            BI_READER_ENV: bi_reader_url,
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
                figures += _tagged(bench_volume(scale, first, progress), "duckdb")
            figures += _tagged([memory_figure("volume (PSS)", memory["peak_mb"], PSS_DETAIL)], "duckdb")
        if any(s in stages for s in WAREHOUSE_STAGES):
            for warehouse in warehouses:
                if warehouse == "duckdb":
                    with own_directory("run"):
                        figures += _on_warehouse(
                            warehouse, scale, day, first, days, backfill, stages, sampler, progress, feeds
                        )
                elif warehouse == "postgres":
                    with (
                        bench_database(postgres_url, postgres_database, keep_postgres, progress) as url,
                        own_directory(
                            "run-postgres", url, reader_url(os.environ.get(BI_READER_ENV), postgres_database)
                        ),
                    ):
                        figures += _on_warehouse(
                            warehouse, scale, day, first, days, backfill, stages, sampler, progress, feeds
                        )
                else:
                    raise ValueError(f"bench: no warehouse {warehouse!r}; one of {', '.join(WAREHOUSES)}")
            figures += _city_day_ratio(figures, scale, feeds)
        if "scheduler" in stages:  # in $EDW_DATA_DIR/bench/scheduler, on databases of its own
            figures += bench_scheduler(postgres_url, scale, build_modes, feeds, progress)
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
                "warehouses": list(warehouses if any(s in stages for s in WAREHOUSE_STAGES) else ()),
                "figures": [asdict(f) for f in figures],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return figures


def _require_targets(section: str, keys: tuple[str, ...]) -> None:
    """Fail before any work when the targets file lacks what the run will judge (a file made for an
    older benchmark)."""
    missing = [k for k in keys if k not in targets().get(section, {})]
    if missing:
        raise ValueError(
            f"the benchmark's targets file ({os.environ.get('EDW_BENCH_TARGETS') or TARGETS_FILE}) lacks "
            f"{', '.join(f'{section}.{k}' for k in missing)}: see plugins/edw_bench/bench.toml"
        )


def _city_day_ratio(
    figures: list[Figure], scale: float, feeds: tuple[str, ...] | None = None
) -> list[Figure]:
    """The city-day's pipeline work on Postgres against DuckDB's in the same run (``[postgres]
    max_ratio_to_duckdb``; a time target: judged at full scale with every feed only)."""
    found = {f.warehouse: f for f in figures if f.name == CITY_DAY_PIPELINE}
    if not {"duckdb", "postgres"} <= found.keys() or not found["duckdb"].value:
        return []
    limit = float(targets()["postgres"]["max_ratio_to_duckdb"])
    ratio = found["postgres"].value / found["duckdb"].value
    full = scale >= 1 and feeds is None
    return [
        Figure(
            ratio_name(CITY_DAY_PIPELINE),
            ratio,
            "x",
            f"<= {limit:g}x",
            ratio <= limit if full else None,
            f"Postgres {found['postgres'].value:.1f} s, DuckDB {found['duckdb'].value:.1f} s, the same day"
            + ("" if full else "; time targets are judged at full scale with every feed only"),
            "postgres",
        )
    ]


def latest_path() -> Path:
    return settings().data_dir / "bench" / "latest.json"
