"""A warehouse__build run the scheduler starts on asset events waits for the day's ingest runs, then skips
when the last successful build (audit.builds) saw every loaded batch (pipeline/builds.py). The scheduler
itself runs it in test_bench (the day built once); `edw run` records its build in test_run_summary."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from emergency_dw.pipeline.builds import (
    LastBuild,
    loaded_batches,
    nothing_new_since,
    record_build,
    scheduled_build_verdict,
)
from emergency_dw.pipeline.pipeline_settings import build_wait_settings
from emergency_dw.pipeline.tables import AUDIT, BATCHES, arrow_table
from emergency_dw.warehouse import connect

from databases import postgres_database

LAST = LastBuild(
    "b1", "edw build", dt.datetime(2026, 11, 28, 0, 5, tzinfo=dt.UTC), dt.datetime.now(dt.UTC), 41, "f"
)


def test_a_scheduled_build_waits_for_the_ingest_runs_then_builds_or_skips():
    never = lambda: None  # noqa: E731 - no build saw everything
    wait = scheduled_build_verdict(["ingest__b", "ingest__a"], 60, 1800, never)
    assert wait.action == "wait" and "2 ingest DAG(s) still loading: ingest__a, ingest__b" in wait.why
    assert scheduled_build_verdict([], 60, 1800, never).action == "build"
    late = scheduled_build_verdict(["ingest__slow"], 1800, 1800, never)
    assert late.action == "build" and "without ingest__slow" in late.why and "another build" in late.why
    skip = scheduled_build_verdict([], 60, 1800, lambda: LAST)
    assert skip.action == "skip" and "2026-11-28 00:05:00 UTC (edw build)" in skip.why and "(41)" in skip.why


def test_the_wait_is_read_from_the_pipeline_settings_and_a_bad_value_is_refused(tmp_path):
    shipped = build_wait_settings()
    assert shipped.wait_for_ingest_minutes == 30 and shipped.poke_seconds == 15
    mine = tmp_path / "pipeline.toml"
    mine.write_text("[build]\nwait_for_ingest_minutes = 5\npoke_seconds = 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="poke_seconds must be more than 0"):
        build_wait_settings(mine)
    mine.write_text("[build]\nwait_for_ingest_minutes = 'soon'\npoke_seconds = 5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[build\] wait_for_ingest_minutes must be a number"):
        build_wait_settings(mine)


def _batch(batch_id: str, finished: str, status: str = "loaded") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch_id": batch_id,
                "feed": batch_id.split(":")[0],
                "status": status,
                "rows_extracted": 1,
                "rows_loaded": 1,
                "rows_quarantined": 0,
                "rows_rejected": 0,
                "finished_at": pd.Timestamp(finished, tz="UTC"),
            }
        ]
    )


def _load(warehouse, batch_id: str, finished: str, status: str = "loaded") -> None:
    with warehouse.transaction() as tx:
        tx.append(AUDIT, "batches", arrow_table(_batch(batch_id, finished, status), BATCHES))


@pytest.mark.postgres
def test_only_a_successful_build_that_saw_every_loaded_batch_makes_the_next_one_skip():
    """On Postgres: a failed build does not count; a new batch makes the next build run (a reloaded one:
    test_run_summary); a failed batch (never read by a build) does not."""
    with postgres_database("edw_test_builds") as (_, url):
        warehouse = connect(url)
        try:
            warehouse.ensure_schema(AUDIT)
            warehouse.ensure_table(AUDIT, "batches", BATCHES, primary_key=["batch_id"])
            _load(warehouse, "alerts_110:2026-11-27", "2026-11-28 00:03")
            assert nothing_new_since(warehouse) is None, "no build yet"
            seen = loaded_batches(warehouse)
            started = dt.datetime(2026, 11, 28, 0, 4, tzinfo=dt.UTC)
            record_build(warehouse, "failed-one", "edw build", started, seen, False, 10, 1)
            assert nothing_new_since(warehouse) is None, "a failed build built nothing"
            record_build(warehouse, "good-one", "warehouse__build asset__1", started, seen, True, 10, 0)
            assert nothing_new_since(warehouse).build_id == "good-one"
            _load(warehouse, "alerts_119:2026-11-27", "2026-11-28 00:06", "failed")
            assert nothing_new_since(warehouse).build_id == "good-one", "a failed batch loads nothing"
            _load(warehouse, "alerts_120:2026-11-27", "2026-11-28 00:07")
            assert nothing_new_since(warehouse) is None, "a batch loaded since the build"
            assert loaded_batches(warehouse).batches == 2
        finally:
            warehouse.close()
