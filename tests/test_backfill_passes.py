"""`edw backfill` builds after every [backfill] days_per_build days (pipeline.toml), so that no build takes
in more days of power readings than the warehouse's memory allows; a build that runs out of memory says so
and what to do."""

from __future__ import annotations

import argparse
import datetime as dt
import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from emergency_dw import cli
from emergency_dw.pipeline.pipeline_settings import build_passes, days_per_build

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=k) for k in range(5)]


def test_days_per_build_is_read_from_the_settings_and_a_bad_value_is_refused(tmp_path, monkeypatch):
    assert days_per_build() == 7  # pipeline.toml as shipped
    assert build_passes(DAYS) == [DAYS]
    mine = tmp_path / "pipeline.toml"
    mine.write_text("[backfill]\ndays_per_build = 2\n", encoding="utf-8")
    monkeypatch.setenv("EDW_PIPELINE_SETTINGS", str(mine))
    assert build_passes(DAYS) == [DAYS[0:2], DAYS[2:4], DAYS[4:5]]
    mine.write_text("[backfill]\ndays_per_build = 0\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"\[backfill\] days_per_build must be a whole number of days, 1 or more"
    ):
        days_per_build()


@pytest.fixture
def backfill(tmp_path, monkeypatch):
    """cmd_backfill with the loads and builds recorded instead of run, two days a pass."""
    mine = tmp_path / "pipeline.toml"
    mine.write_text("[backfill]\ndays_per_build = 2\n", encoding="utf-8")
    monkeypatch.setenv("EDW_PIPELINE_SETTINGS", str(mine))
    steps: list = []
    builds = iter([])
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=400))

    def ingest(feeds, days, quiet=False):
        steps.append(("ingest", list(days)))
        return [SimpleNamespace(state="success", feed=feeds[0], day=d, batch={}, seconds=0.0) for d in days]

    def build(**_):
        steps.append("build")
        return next(builds, True)

    monkeypatch.setattr(cli, "_ingest_days", ingest)
    monkeypatch.setattr(cli, "_build", build)
    monkeypatch.setattr(cli, "_print_batches", lambda outcomes: None)

    def run(build_results=(), no_build=False):
        nonlocal builds
        builds = iter(build_results)
        args = argparse.Namespace(from_date=DAYS[0], to_date=DAYS[-1], feed=["alerts_110"], no_build=no_build)
        return cli.cmd_backfill(args), steps, out.getvalue()

    return run


def test_a_backfill_builds_after_every_pass_of_days(backfill):
    code, steps, output = backfill()
    assert code == 0
    assert steps == [
        ("ingest", DAYS[0:2]),
        "build",
        ("ingest", DAYS[2:4]),
        "build",
        ("ingest", DAYS[4:5]),
        "build",
    ]
    assert "pass 2 of 3: 2026-11-03 .. 2026-11-04, then the build" in output


def test_a_failed_build_stops_the_backfill_and_names_the_days_left(backfill):
    code, steps, output = backfill(build_results=[True, False])
    assert code == 1
    assert steps == [("ingest", DAYS[0:2]), "build", ("ingest", DAYS[2:4]), "build"]  # day 5 not loaded
    assert "The build after 2026-11-03 .. 2026-11-04 failed" in output
    assert "`edw backfill --from 2026-11-05 --to 2026-11-05` loads them once the build passes" in output


def test_without_a_build_every_day_is_loaded_in_one_pass(backfill):
    code, steps, _ = backfill(no_build=True)
    assert code == 0 and steps == [("ingest", DAYS)]


def test_a_build_out_of_memory_says_what_to_do():
    message = "Runtime Error in model int_power_meter_days\n  Out of Memory Error: could not allocate block"
    hint = cli.out_of_memory_hint(["", message])
    assert "ran out of memory (EDW_DUCKDB_MEMORY_LIMIT, now 1GB)" in hint
    assert "Raise EDW_DUCKDB_MEMORY_LIMIT" in hint and "[backfill] days_per_build" in hint
    assert "Nothing loaded is lost" in hint
    assert cli.out_of_memory_hint(["Database Error: relation does not exist"]) is None
