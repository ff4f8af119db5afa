"""Stage history: a backfill of the baseline window, then day after day, ingest and incremental build:
the last day's build against the first (``--days``)."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable

from emergency_dw.config import settings
from emergency_dw.pipeline.pipeline_settings import build_passes

from .figures import BUILD_PEAKS_MB, Figure, feeds_said, targets
from .processes import build_process, simulate_days, simulate_process
from .workers import ingest_workers


def _baseline_days() -> int:
    """The power rules' lookback (seed anomaly_thresholds, baseline.lookback_days): the days that say what
    is usual for a day."""
    import csv

    from emergency_dw.transform import DBT_PROJECT

    with (DBT_PROJECT / "seeds" / "anomaly_thresholds.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["rule"], row["parameter"]) == ("baseline", "lookback_days"):
                return int(float(row["value"]))
    raise ValueError("seed anomaly_thresholds has no baseline.lookback_days")


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
    feeds: tuple[str, ...] | None = None,
) -> list[Figure]:
    """The platform as it goes live and then runs daily: first the history of the baseline window is
    backfilled (``backfill`` days: every feed's batches, a build after every ``[backfill] days_per_build``
    days, ``edw backfill``'s way), then
    ``days`` days follow one after another, each simulated (the world, timed apart), ingested (feeds side
    by side) and built incrementally. The incremental build of the last day against the first daily one:
    both compute baselines over a full window, so what differs is the history behind them alone. ``feeds``:
    only these feeds are simulated and ingested (default every feed; the build is the whole project's)."""
    from emergency_dw.embedded import embedded_sources

    goal = targets()
    per_day: list[dict] = []
    records = pipeline = simulate = 0.0
    backfill_records = backfill_ingest = backfill_build_seconds = 0.0
    passes: list = []
    first_daily = first_day + dt.timedelta(days=backfill)
    with embedded_sources(apis_apart=True), ingest_workers() as workers:
        if backfill:
            simulate += simulate_days(first_day, backfill, scale, feeds)
            passes = build_passes([first_day + dt.timedelta(days=k) for k in range(backfill)])
            for loaded in passes:
                for day in loaded:
                    extracted, seconds = workers.ingest_day(day, feeds)
                    backfill_records += extracted
                    backfill_ingest += seconds
                build = build_process()
                if not build.success:
                    raise RuntimeError(
                        f"bench history: the build of the backfill after {loaded[0]} .. {loaded[-1]} failed:\n"
                        f"{build.output}"
                    )
                backfill_build_seconds += build.seconds
            if progress:
                progress(
                    f"backfill of {backfill} days from {first_day}: {backfill_records / 1e6:.2f} M records, ingest "
                    f"{backfill_ingest:.0f} s, {len(passes)} build(s) {backfill_build_seconds:.0f} s"
                )
        for k in range(days):
            day = first_daily + dt.timedelta(days=k)
            simulate += simulate_process(day, scale, feeds)
            extracted, ingest_seconds = workers.ingest_day(day, feeds)
            build = build_process()
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
                    f"{workers.task_peak_mb:.0f} MiB, build {max(BUILD_PEAKS_MB):.0f} MiB)"
                )
    first, last = per_day[0], per_day[-1]
    growth = last["build_s"] / first["build_s"]
    builds = [d["build_s"] for d in per_day]
    figures = []
    if backfill:
        figures.append(
            Figure(
                "history: backfill before the daily runs",
                backfill_ingest + backfill_build_seconds,
                "s",
                "",
                None,
                f"{backfill} day(s) from {first_day} (the baseline window), {backfill_records / 1e6:.2f} M records: "
                f"ingest {backfill_ingest:.0f} s, {len(passes)} build(s) {backfill_build_seconds:.0f} s (a build every "
                f"[backfill] days_per_build days, as `edw backfill` builds)",
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
        Figure(
            "history: records ingested daily", records, "records", "", None, f"{feeds_said(feeds)}, all days"
        ),
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
