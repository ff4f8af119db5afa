"""History reaches the marts, however old: after a daily run has built the marts, a department's past
week (a month before) is loaded, and the next build must give every mart a full rebuild would give.

Before, the incremental marts rebuilt a fixed lookback before the newest date already built: 3,560 real
incidents of a past week loaded, validated and staged reached 0 rows of `fct_incident_response`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from emergency_dw.catalog import get_feed
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest, land_file, validate_and_load
from emergency_dw.simulator.run import Simulator
from emergency_dw.transform import run_dbt
from emergency_dw.warehouse import connect

from reliability import assert_same_rows

SCALE = 0.005
# every feed a mart reads (the response, power, risk, hazard-loop and oversight marts and their dimensions)
FEEDS = [
    "alerts_110",
    "alerts_119",
    "alerts_120",
    "dispatch_records",
    "rescue_teams",
    "rescuers",
    "town_population",
    "power_load_readings",
    "cable_temperature_readings",
    "enterprise_registry",
    "enterprise_safety_profiles",
    "production_suspension_orders",
    "special_equipment",
    "geohazard_points",
    "hazard_inspections",
    "weather_warnings",
    "grid_tasks",
    "guardian_code_scans",
    "evaluation_projects",
    "site_checkins",
]
# one daily run builds the marts (the first build; the past week's is then an incremental one, the case that
# reached no mart before)
DAILY = [dt.date(2026, 11, 20)]
PAST_WEEK = [dt.date(2026, 10, 19) + dt.timedelta(days=k) for k in range(7)]  # a month before
SEQUENCED_KEY_TEST = (
    "unique_combination_in_built_dates_int_power_readings_sequenced_meter_id__reading_at__reading_date"
)
BUILD = [
    "build",
    "--select",
    "+path:models/marts",
    "--indirect-selection",
    "cautious",
    "--exclude-resource-type",
    "unit_test",
]


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's own embedded warehouse and data directory, where the pipeline and dbt read them."""
    url = f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    monkeypatch.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
    return url


def _load(tmp_path: Path, days: list[dt.date], feeds: list[str]) -> None:
    """The departments' data of those days (simulated at SCALE) ingested feed by feed, as the daily runs do."""
    sim = Simulator(tmp_path / "data" / "sources", scale=SCALE)
    with embedded_sources():
        for day in days:
            sim.simulate_day(day, feeds=feeds)
            for feed in feeds:
                ingest(feed, *day_interval(day))


def _marts(url: str) -> dict[str, pd.DataFrame]:
    """Every relation of the marts schema, row by row as text (without when it was built)."""
    warehouse = connect(url)
    try:
        names = [
            r["table_name"]
            for r in warehouse.query(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).to_pylist()
        ]
        out = {}
        for name in names:
            frame = warehouse.query(f'select * from marts."{name}"').to_pandas()
            frame = frame.drop(columns=[c for c in frame.columns if c == "_built_at"])
            frame = frame[sorted(frame.columns)].astype(str)
            out[f"marts.{name}"] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        return out
    finally:
        warehouse.close()


def _count(url: str, sql: str) -> int:
    warehouse = connect(url)
    try:
        return int(warehouse.query(sql).to_pylist()[0]["n"])
    finally:
        warehouse.close()


@pytest.mark.slow
def test_a_past_week_loaded_after_daily_runs_reaches_every_mart_as_a_full_rebuild_would(
    tmp_path: Path, url: str
):
    for day in DAILY:
        _load(tmp_path, [day], FEEDS)
        run = run_dbt(BUILD, warehouse_url=url)
        assert run.success, run.error
    _load(tmp_path, PAST_WEEK, FEEDS)
    run = run_dbt(BUILD, warehouse_url=url)
    assert run.success, run.error
    incremental = _marts(url)

    first, last = PAST_WEEK[0].isoformat(), PAST_WEEK[-1].isoformat()
    staged = _count(
        url,
        "select count(*) as n from intermediate.int_alerts_unioned "
        f"where received_date between date '{first}' and date '{last}'",
    )
    in_mart = _count(
        url,
        "select count(*) as n from marts.fct_incident_response "
        f"where received_date between date '{first}' and date '{last}'",
    )
    assert staged > 0 and in_mart == staged, "every staged call of the past week is in the mart"
    risk_days = _count(
        url,
        "select count(distinct risk_date) as n from marts.fct_enterprise_risk_daily "
        f"where risk_date between date '{first}' and date '{last}'",
    )
    assert risk_days == len(PAST_WEEK), "the risk index of every day of the past week"

    # the big tables' tests read every date the last build wrote, however old: a reading of the past week
    # held twice fails the sequenced readings' key test (it checked only the latest days before)
    warehouse = connect(url)
    try:
        with warehouse.transaction() as tx:
            tx.execute(
                "insert into intermediate.int_power_readings_sequenced select * from"
                f" intermediate.int_power_readings_sequenced where reading_date = date '{first}' limit 1"
            )
    finally:
        warehouse.close()
    checked = run_dbt(["test", "--select", SEQUENCED_KEY_TEST], warehouse_url=url)
    assert [r["status"] for r in checked.results] == ["fail"], checked.results

    run = run_dbt([*BUILD, "--full-refresh"], warehouse_url=url)
    assert run.success, run.error
    rebuilt = _marts(url)
    assert len(incremental) >= 10, sorted(incremental)
    assert_same_rows(incremental, rebuilt, "incremental build after a past week vs a full rebuild")


# The risk index of a day reads each snapshot record in the version in force that day
CORRECTED_DAYS = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
CORRECTED_FEEDS = [  # what the risk index reads
    "power_load_readings",
    "cable_temperature_readings",
    "enterprise_registry",
    "enterprise_safety_profiles",
    "production_suspension_orders",
    "special_equipment",
    "geohazard_points",
    "hazard_inspections",
    "weather_warnings",
]
RISK_SELECT = [
    "build",
    "--select",
    "+fct_enterprise_risk_daily",
    "--indirect-selection",
    "cautious",
    "--exclude-resource-type",
    "unit_test",
]


def _send_profile_version(url: str, root: Path, enterprise_id: str, updated_at: str, grade: str) -> None:
    """The enterprise's safety profile as its department re-sends it: another grade, updated at that time."""
    columns = [c.name for c in get_feed("enterprise_safety_profiles").columns]
    warehouse = connect(url)
    try:
        frame = warehouse.query(
            f"select {', '.join(columns)} from raw.enterprise_safety_profiles "
            f"where enterprise_id = '{enterprise_id}' order by updated_at desc, _loaded_at desc limit 1"
        ).to_pandas()
    finally:
        warehouse.close()
    frame["standardisation_grade"] = grade
    frame["updated_at"] = pd.Timestamp(updated_at)
    path = root / f"profiles-{grade}.parquet"
    frame.to_parquet(path, index=False)
    validate_and_load(land_file("enterprise_safety_profiles", path, CORRECTED_DAYS[-1], CORRECTED_DAYS[-1]))


def _grades(url: str, enterprise_id: str) -> dict[str, str]:
    warehouse = connect(url)
    try:
        rows = warehouse.query(
            "select cast(risk_date as varchar) as risk_date, match_value from intermediate.int_enterprise_risk_points "
            f"where enterprise_id = '{enterprise_id}' and item = 'standardisation_grade'"
        ).to_pylist()
    finally:
        warehouse.close()
    return {r["risk_date"]: r["match_value"] for r in rows}


@pytest.mark.slow
def test_a_corrected_profile_changes_the_risk_index_from_its_own_date_and_the_days_before_keep_theirs(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
):
    """Three days built; then a department re-sends an enterprise's safety profile updated on the 20th, then
    a correction updated on the 19th (older than the version already held). Each day's risk points read the
    version in force that day, and the incremental builds give what a full rebuild gives."""
    # a build takes in what was loaded since the last one
    monkeypatch.setenv("EDW_LOAD_COMMIT_MARGIN_MINUTES", "0")
    _load(tmp_path, CORRECTED_DAYS, CORRECTED_FEEDS)
    run = run_dbt(RISK_SELECT, warehouse_url=url)
    assert run.success, run.error
    warehouse = connect(url)
    try:  # an enterprise whose profile was last changed before the first day
        first = warehouse.query(
            "select enterprise_id, standardisation_grade from staging.stg_yjj__enterprise_safety_profiles "
            "where updated_at < timestamptz '2026-11-17 16:00:00+00' order by enterprise_id limit 1"
        ).to_pylist()[0]
        enterprise_id, original = first["enterprise_id"], first["standardisation_grade"]
    finally:
        warehouse.close()
    days = _grades(url, enterprise_id)
    assert {d.isoformat() for d in CORRECTED_DAYS} <= set(days) and set(days.values()) == {original}
    later, earlier = [g for g in ("none", "grade_1", "grade_2", "grade_3") if g != original][:2]

    _send_profile_version(url, tmp_path, enterprise_id, "2026-11-20 09:00:00+08:00", later)
    run = run_dbt(RISK_SELECT, warehouse_url=url)
    assert run.success, run.error
    assert _grades(url, enterprise_id) == {d: later if d >= "2026-11-20" else original for d in days}

    _send_profile_version(url, tmp_path, enterprise_id, "2026-11-19 09:00:00+08:00", earlier)
    run = run_dbt(RISK_SELECT, warehouse_url=url)
    assert run.success, run.error
    assert _grades(url, enterprise_id) == {
        d: later if d >= "2026-11-20" else earlier if d == "2026-11-19" else original for d in days
    }
    incremental = _marts(url)

    run = run_dbt([*RISK_SELECT, "--full-refresh"], warehouse_url=url)
    assert run.success, run.error
    rebuilt = _marts(url)
    assert "marts.fct_enterprise_risk_daily" in incremental
    assert_same_rows(incremental, rebuilt, "incremental builds after corrected profiles vs a full rebuild")
