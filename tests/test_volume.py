"""A feed expected daily that delivers nothing, or far fewer rows than its history, fails its batch
(``row_count_in_band``) and shows in the run summary and on the audit page; a quiet day of a small feed
does not fail; the summary explains the validation pass rate by the rows each rule held."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter

import pytest

from emergency_dw import catalog
from emergency_dw.pipeline import suites
from emergency_dw.pipeline.ingest import BatchFailed, day_interval, ingest
from emergency_dw.pipeline.pipeline_settings import row_count_band_settings
from emergency_dw.pipeline.volume import band_from_rates
from emergency_dw.reports import queries
from emergency_dw.reports.pages import build_report_pages
from emergency_dw.reports.summary import collect_run_summary, volume_flags
from emergency_dw.simulator.run import Simulator
from emergency_dw.warehouse import connect

from conftest import DAY, SCALE

QUIET = DAY - dt.timedelta(days=3)  # the sources hold nothing of this day: the department sent nothing


def test_every_feed_expected_daily_has_a_generated_band_and_snapshots_none():
    for feed in catalog.FEEDS:
        names = [r["name"] for r in suites.catalog_rules(feed)]
        assert (suites.ROW_COUNT_RULE in names) == (not feed.snapshot), feed.name
    # written once: no suite repeats the generated rule by hand
    for feed in catalog.FEEDS:
        assert suites.ROW_COUNT_RULE not in {r["name"] for r in suites.load_suite(feed)["rules"]}, feed.name


@pytest.mark.parametrize("per_day", [0.5, 1, 2, 5, 12, 50, 400, 5000])
def test_the_band_holds_an_ordinary_poisson_day_at_any_volume(per_day: float):
    band = row_count_band_settings()  # pipeline.toml: 0.2x..5x, widened by 3 standard deviations
    low, high = band_from_rates([per_day] * 7, 1, band.low, band.high, band.chance_sigmas)
    # the chance of an ordinary (Poisson) day outside the band is under 1 in 200
    inside = sum(math.exp(k * math.log(per_day) - per_day - math.lgamma(k + 1)) for k in range(low, high + 1))
    outside = 1 - inside
    assert outside < 0.005, (per_day, low, high, outside)
    if per_day >= 12:
        assert low > 0, "an empty day of a feed this busy fails"
    if per_day >= 400:
        assert low >= band.low * per_day and high <= band.high * per_day + 1


def test_the_band_is_tuned_in_pipeline_toml_and_a_broken_file_says_what_is_missing(tmp_path, monkeypatch):
    mine = tmp_path / "pipeline.toml"
    mine.write_text(
        "[row_count_band]\nbatches = 14\nlow = 0.5\nhigh = 2.0\nmin_history = 5\n"
        "floor_from_rows_per_day = 10\nchance_sigmas = 4.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDW_PIPELINE_SETTINGS", str(mine))
    rule = suites.row_count_rule(catalog.get_feed("dispatch_records"))
    assert rule["history"] == {
        "batches": 14,
        "low": 0.5,
        "high": 2.0,
        "min_history": 5,
        "floor_from_rows_per_day": 10,
    }
    assert "0.5x..2x the median of its last 14 loaded batches" in rule["description"]
    mine.write_text("[row_count_band]\nbatches = 14\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[row_count_band\] lacks \['low'"):
        row_count_band_settings()


@pytest.fixture(scope="module")
def quiet_and_normal_day(tmp_path_factory: pytest.TempPathFactory):
    """dispatch_records in a fresh warehouse: a day the department sent nothing, then an ordinary day."""
    root = tmp_path_factory.mktemp("volume")
    url = f"duckdb:///{root / 'wh.duckdb'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        Simulator(root / "data" / "sources", scale=SCALE).simulate_day(DAY, feeds=["dispatch_records"])
        from emergency_dw.embedded import embedded_sources

        with embedded_sources():
            with pytest.raises(BatchFailed) as failure:
                ingest("dispatch_records", *day_interval(QUIET))
            normal = ingest("dispatch_records", *day_interval(DAY))
        pages = build_report_pages(data_dir=root / "data", warehouse_url=url)
    return url, failure.value, normal, pages


def test_an_empty_delivery_of_a_daily_feed_fails_its_batch_with_a_clear_message(quiet_and_normal_day):
    url, failure, normal, _ = quiet_and_normal_day
    message = str(failure)
    assert failure.rule == "row_count_in_band" and failure.batch_id == f"dispatch_records:{QUIET}"
    assert "dispatch_records" in message and f"dispatch_records:{QUIET}" in message
    assert "row_count_in_band" in message and "holds 0 rows" in message
    assert "at least one row" in message, "the message says what the band was"
    assert normal.status == "loaded" and normal.rows_loaded > 0, "an ordinary day passes the band"
    warehouse = connect(url)
    try:
        batch = warehouse.query(
            "select status, failed_rule, rows_extracted from audit.batches where batch_id = ?",
            [f"dispatch_records:{QUIET}"],
        ).to_pylist()
    finally:
        warehouse.close()
    assert batch == [{"status": "failed", "failed_rule": "row_count_in_band", "rows_extracted": 0}]


def test_the_summary_and_the_audit_page_show_the_empty_batch(quiet_and_normal_day):
    url, _, _, pages = quiet_and_normal_day
    summary = collect_run_summary(url, [QUIET, DAY])
    [flag] = summary.volume_flags
    assert (flag.feed, flag.day, flag.status, flag.rows_extracted) == (
        "dispatch_records",
        str(QUIET),
        "failed",
        0,
    )
    assert "outside its band" in flag.problem and "at least one row" in flag.problem
    assert any(
        "volume: 1 batch(es)" in line and "(1 failed)" in line for line in summary.validation_explained
    )
    audit = next(p for p in pages if p.parent.name == "audit").read_text(encoding="utf-8")
    section = audit[audit.index('<table id="volume-flags">') :]
    section = section[: section.index("</table>")]
    assert f"dispatch_records:{QUIET}" in section and "failed" in section and "outside its band" in section


def test_the_summary_explains_the_pass_rate_by_the_rows_each_rule_held(quiet_and_normal_day):
    url, _, normal, _ = quiet_and_normal_day
    warehouse = connect(url)
    try:
        held = warehouse.query("select _failed_rules from quarantine.dispatch_records").to_pylist()
    finally:
        warehouse.close()
    expected = Counter(rule for row in held for rule in json.loads(row["_failed_rules"]))
    assert expected, "the simulated day carries injected defects"
    summary = collect_run_summary(url, [QUIET, DAY])
    assert {h.rule: h.rows for h in summary.held_by_rule} == dict(expected)
    assert all(h.feeds == ["dispatch_records"] and h.description for h in summary.held_by_rule)
    text = "\n".join(summary.validation_explained)
    assert "counts defects caught, not pipeline failures" in text
    assert f"{normal.rows_quarantined:,} of {normal.rows_extracted:,} rows extracted" in text
    top = summary.held_by_rule[0]
    assert f"most by {top.rule} ({top.rows:,})" in text


def _batch(feed: str, rows: int, status: str = "loaded", failed_rule: str | None = None) -> queries.Batch:
    return queries.Batch(
        f"{feed}:{DAY}", feed, DAY, status, rows, rows, 0, 0, failed_rule, None, None, None, None
    )


def _band_result(feed: str, success: bool, skipped: str | None, description: str) -> queries.ValidationResult:
    return queries.ValidationResult(
        f"{feed}:{DAY}", feed, "row_count_in_band", "expect_table_row_count_to_be_between", None, "critical",
        success, 0, skipped, description, dt.datetime(2026, 11, 28),
    )  # fmt: skip


def test_a_quiet_day_of_a_small_feed_is_flagged_not_failed():
    batches = [_batch("weather_warnings", 0), _batch("gas_pipeline_alarms", 0), _batch("schools", 0)]
    results = [
        _band_result("weather_warnings", True, "only 1 earlier batches; the band needs 3", "d"),
        _band_result("gas_pipeline_alarms", True, None, "d (band 0..10: median 2.0 a day of 3 batches)"),
    ]
    flags = {f.feed: f for f in volume_flags(batches, results)}
    assert set(flags) == {"weather_warnings", "gas_pipeline_alarms"}, "a snapshot is not expected daily"
    assert all(f.status == "loaded" for f in flags.values())
    assert "not judged yet (only 1 earlier batches" in flags["weather_warnings"].problem
    assert "within its band (band 0..10: median 2.0" in flags["gas_pipeline_alarms"].problem
