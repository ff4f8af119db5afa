"""Stage volume: the seed's full volume (31.59 M records) end to end as a backfill: every day's batches,
feeds side by side, a dbt build after every `[backfill] days_per_build` days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from emergency_dw.pipeline.pipeline_settings import days_per_build

from .figures import Figure, targets
from .processes import build_process, simulate_process
from .workers import ingest_workers


def bench_volume(
    scale: float, first_day: dt.date, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """The seed's full volume end to end, as a user loads a month of history: ``edw backfill``'s way,
    each day's batches (one per feed and day, feeds side by side), a dbt build after every
    ``[backfill] days_per_build`` days and after the last. Days are
    simulated as they are needed (the world, timed apart) until the batches held 31.59 M records at
    full scale; the clock runs from the first extract to the marts built."""
    from emergency_dw.embedded import embedded_sources

    goal = targets()
    volume = int(goal["volume"]["records"] * scale)
    records = ingest = simulate = built = 0.0
    days = builds = unbuilt = 0
    per_build = days_per_build()

    def build_now() -> float:
        build = build_process()
        if not build.success:
            raise RuntimeError(f"bench volume: the dbt build after day {days} failed:\n{build.output}")
        return build.seconds

    with embedded_sources(apis_apart=True), ingest_workers() as workers:
        while records < volume:
            day = first_day + dt.timedelta(days=days)
            simulate += simulate_process(day, scale)
            extracted, seconds = workers.ingest_day(day)
            records += extracted
            ingest += seconds
            days += 1
            unbuilt += 1
            if progress:
                progress(
                    f"volume day {days} {day}: {extracted:,} records in {seconds:.1f} s "
                    f"({records / 1e6:.2f} M of {volume / 1e6:.2f} M, ingest so far {ingest:.0f} s)"
                )
            if unbuilt == per_build:  # as `edw backfill` builds: after every [backfill] days_per_build days
                built += build_now()
                builds += 1
                unbuilt = 0
    if unbuilt:
        built += build_now()
        builds += 1
    seconds = ingest + built
    limit = goal["volume"]["max_minutes"] * 60
    full = scale >= 1
    return [
        Figure(
            f"volume: {records / 1e6:.2f} M records end to end",
            seconds,
            "s",
            f"< {limit:.0f} s" if full else "",
            seconds < limit if full else None,
            f"{days} days from {first_day}: ingest {ingest:.0f} s ({workers.workers} workers), {builds} build(s) "
            f"{built:.0f} s (after every {per_build} days, as `edw backfill` builds)",
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
