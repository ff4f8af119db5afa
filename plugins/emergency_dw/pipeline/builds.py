"""The warehouse's builds as ``audit.builds`` records them, and what a build started by the scheduler waits
for before it runs.

Every production build (``edw build``, ``warehouse__build``'s ``dbt_build``) records, when it starts, which
batches it can see (their count and a fingerprint of their ids and finish times: a batch loaded or
reloaded since changes it) and, when it ends, whether it succeeded. A ``warehouse__build`` run the
scheduler started on asset events first waits while ingest DAG runs are still queued or running (the
day's feeds land together; ``[build]`` in ``pipeline.toml``), then is skipped when the last successful
build already saw every batch loaded: the events that started it came in while that build waited for them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from .tables import AUDIT, BUILDS, arrow_table, existing_tables

# the batches a build can see: the loaded ones, each with when it (last) loaded
_LOADED = """
select
    count(*) as batches,
    coalesce(md5(string_agg(batch_id || '@' || cast(finished_at as varchar), ',' order by batch_id)), '')
        as fingerprint
from audit.batches
where status = 'loaded'
"""


@dataclass(frozen=True)
class LoadedBatches:
    """What a build can see of ``audit.batches``: the loaded batches and their fingerprint."""

    batches: int
    fingerprint: str


@dataclass(frozen=True)
class LastBuild:
    """The latest successful build of ``audit.builds``."""

    build_id: str
    via: str
    started_at: dt.datetime
    finished_at: dt.datetime
    batches: int
    fingerprint: str


def loaded_batches(warehouse) -> LoadedBatches:
    if "batches" not in existing_tables(warehouse, AUDIT):
        return LoadedBatches(0, "")
    row = warehouse.query(_LOADED).to_pylist()[0]
    return LoadedBatches(int(row["batches"]), row["fingerprint"] or "")


def last_successful_build(warehouse) -> LastBuild | None:
    if "builds" not in existing_tables(warehouse, AUDIT):
        return None
    rows = warehouse.query(
        "select build_id, via, started_at, finished_at, batches_seen, batches_fingerprint from audit.builds "
        "where status = 'success' order by started_at desc limit 1"
    ).to_pylist()
    if not rows:
        return None
    row = rows[0]
    return LastBuild(
        row["build_id"],
        row["via"],
        row["started_at"],
        row["finished_at"],
        row["batches_seen"],
        row["batches_fingerprint"],
    )


def nothing_new_since(warehouse) -> LastBuild | None:
    """The last successful build when it saw every batch loaded now (a build now would find nothing new),
    else None."""
    last = last_successful_build(warehouse)
    if last is None:
        return None
    now = loaded_batches(warehouse)
    return last if (now.batches, now.fingerprint) == (last.batches, last.fingerprint) else None


def record_build(
    warehouse,
    build_id: str,
    via: str,
    started_at: dt.datetime,
    seen: LoadedBatches,
    success: bool,
    nodes: int,
    failed_nodes: int,
) -> None:
    """Append the build to ``audit.builds`` (created on first use; the auditor reads it)."""
    warehouse.ensure_schema(AUDIT)
    warehouse.ensure_table(AUDIT, "builds", BUILDS, primary_key=["build_id"])
    row = {
        "build_id": build_id,
        "via": via,
        "started_at": pd.Timestamp(started_at),
        "finished_at": pd.Timestamp(dt.datetime.now(dt.UTC)),
        "status": "success" if success else "failed",
        "batches_seen": seen.batches,
        "batches_fingerprint": seen.fingerprint,
        "nodes": nodes,
        "failed_nodes": failed_nodes,
    }
    with warehouse.transaction() as tx:
        tx.append(AUDIT, "builds", arrow_table(pd.DataFrame([row]), BUILDS))
    if warehouse.dialect == "postgres":  # the auditor reads it from the first build on
        from ..warehouse.grants import grant_readers, reader_roles

        readers = reader_roles().get(AUDIT, ())
        if readers:
            grant_readers(warehouse, AUDIT, ["builds"], readers)


def production_build(via: str, args: Iterable[str] | None = None, **run_options):
    """``dbt <args>`` (default: the production build) recorded in ``audit.builds`` as a build ``via`` one
    way or another (``edw build``, ``warehouse__build <run id>``): what it could see when it started, and
    how it ended. Returns dbt's run (``transform.DbtRun``)."""
    from ..config import settings
    from ..transform import PRODUCTION_BUILD, run_dbt
    from ..warehouse import connect

    url = settings().warehouse_url
    warehouse = connect(url)
    try:  # before dbt starts: every batch counted here is committed, so the build reads it
        seen = loaded_batches(warehouse)
    finally:
        warehouse.close()
    started = dt.datetime.now(dt.UTC)
    run = run_dbt(list(args or PRODUCTION_BUILD), **run_options)
    failed = run.failed
    warehouse = connect(url)
    try:
        record_build(
            warehouse, uuid.uuid4().hex, via, started, seen, run.success, len(run.results), len(failed)
        )
    finally:
        warehouse.close()
    return run


@dataclass(frozen=True)
class WaitVerdict:
    """What a scheduled ``warehouse__build`` run does now: wait, build, or skip (with why)."""

    action: str  # wait | build | skip
    why: str


def scheduled_build_verdict(
    busy: list[str],
    waited_seconds: float,
    wait_limit_seconds: float,
    nothing_new: Callable[[], LastBuild | None],
) -> WaitVerdict:
    """A run started on asset events: wait while ``busy`` ingest DAGs have runs queued or running (until
    ``wait_limit_seconds`` since the run started), then skip when ``nothing_new()`` names a build that saw
    every batch loaded, else build."""
    if busy and waited_seconds < wait_limit_seconds:
        return WaitVerdict("wait", f"{len(busy)} ingest DAG(s) still loading: {', '.join(sorted(busy)[:5])}")
    last = nothing_new()
    if last is not None:
        return WaitVerdict(
            "skip",
            f"nothing to build: the build of {last.started_at:%Y-%m-%d %H:%M:%S} UTC ({last.via}) saw every "
            f"loaded batch ({last.batches:,}); the asset events of this run came in while it waited for them",
        )
    if busy:
        return WaitVerdict(
            "build",
            f"waited {waited_seconds / 60:.0f} min ([build] wait_for_ingest_minutes); building what has landed "
            f"without {', '.join(sorted(busy))}: their batches will start another build",
        )
    return WaitVerdict("build", "no ingest DAG run is queued or running")
