"""The power-anomaly and risk marts end to end: simulate ten small days, ingest them through the real
pipeline, build the marts with dbt (the last day incrementally), and judge the warnings against the
simulator's ground truth; on DuckDB, and on Postgres when it is reachable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from emergency_dw.embedded import embedded_sources
from emergency_dw.evaluation import POWER_RULES, evaluate, score
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.simulator.run import Simulator
from emergency_dw.transform import run_dbt
from emergency_dw.warehouse import connect

from databases import create_database, drop_database, postgres_url

SCALE = 0.005  # 72 metered enterprises, 6 monitored cables
# At this scale two suspension orders are in force in May 2026 (so every rule gets injected anomalies)
# and a major hazard is found on 2026-05-20 (day 8) and stays open.
FIRST_DAY = dt.date(2026, 5, 13)
DAYS = 10  # the first 7 build the baseline; days 8 to 10 are judged
LOAD_FEEDS = ["power_load_readings", "cable_temperature_readings"]  # every day: the baseline needs them
# The risk inputs matter for the last days only (the risk marts are judged on day 10): ingested from
# day 6 on, the snapshots on the last day, to keep the test within its minute.
EVENT_FEEDS = ["hazard_inspections", "weather_warnings"]
EVENTS_FROM_DAY = 6
SNAPSHOT_FEEDS = [
    "enterprise_registry",
    "enterprise_safety_profiles",
    "production_suspension_orders",
    "special_equipment",
    "geohazard_points",
]
SELECT = ["--select", "+fct_power_anomalies +fct_enterprise_risk_daily", "--indirect-selection", "cautious"]
POWER_COLUMNS = [
    "anomaly_id",
    "enterprise_id",
    "rule",
    "started_at",
    "ended_at",
    "peak_value",
    "threshold",
    "severity",
]
RISK_COLUMNS = [
    "enterprise_id",
    "risk_date",
    "inherent_score",
    "management_score",
    "environment_score",
    "monitoring_score",
    "risk_index",
    "risk_level",
    "top_factors",
]


@dataclass
class Built:
    root: Path
    url: str
    runs: list
    days: list[dt.date]


def _ingest_days(sim: Simulator, days: list[dt.date], snapshot_day: dt.date) -> None:
    for day in days:
        feeds = list(LOAD_FEEDS)
        if day >= FIRST_DAY + dt.timedelta(days=EVENTS_FROM_DAY - 1):
            feeds += EVENT_FEEDS
        if day == snapshot_day:
            feeds += SNAPSHOT_FEEDS
        sim.simulate_day(day, feeds=feeds)
        for feed in feeds:
            ingest(feed, *day_interval(day))


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def built(request, tmp_path_factory: pytest.TempPathFactory):
    """Nine days ingested and built in full, then a tenth ingested and built incrementally."""
    root = tmp_path_factory.mktemp(f"marts-{request.param}")
    database = None
    if request.param == "duckdb":
        url = f"duckdb:///{root / 'data' / 'warehouse.duckdb'}"
    else:
        database = create_database("edw_test_power")
        url = postgres_url(database)
    days = [FIRST_DAY + dt.timedelta(days=k) for k in range(DAYS)]
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
        sim = Simulator(root / "data" / "sources", scale=SCALE)
        with embedded_sources():
            _ingest_days(sim, days[:-1], snapshot_day=days[-2])
            runs.append(run_dbt(["build", *SELECT], warehouse_url=url))
            _ingest_days(sim, days[-1:], snapshot_day=days[-1])
            runs.append(run_dbt(["build", *SELECT], warehouse_url=url))
    yield Built(root, url, runs, days)
    if database:
        drop_database(database)


def _query(url: str, sql: str) -> list[dict]:
    warehouse = connect(url)
    try:
        return warehouse.query(sql).to_pylist()
    finally:
        warehouse.close()


def test_the_full_and_the_incremental_build_pass(built: Built):
    for run in built.runs:
        failed = [r for r in run.results if r["status"] not in ("success", "pass")]
        assert run.success and not failed, (run.error, failed[:5])
    incremental = {r["node"] for r in built.runs[1].results}
    assert "model.emergency_dw.fct_power_anomalies" in incremental
    assert (
        "unit_test.emergency_dw.fct_power_anomalies.overload_needs_two_consecutive_intervals_at_ninety_percent"
        in (incremental)
    )


def test_every_rule_is_detected_with_precision_and_recall_of_at_least_ninety_percent(built: Built):
    rows = {r["rule"]: r for r in evaluate(built.url, built.root / "data" / "sources" / "truth")}
    assert set(rows) == set(POWER_RULES)
    judged = rows["overload"]["days"]
    assert judged >= 3, "days 8 to 10 have a 7-day baseline"
    for rule, row in rows.items():
        assert row["injected"] >= judged, (rule, row)  # at least one injected anomaly a day
        assert row["recall"] >= 0.9, (rule, row)
        assert row["precision"] >= 0.9, (rule, row)


def test_the_last_day_built_incrementally_has_its_warnings(built: Built):
    last = built.days[-1].isoformat()
    rows = _query(
        built.url,
        f"select distinct rule from marts.fct_power_anomalies where started_at >= timestamptz '{last} 00:00:00+08'",
    )
    assert {r["rule"] for r in rows} >= {"overload", "cable_over_temperature"}
    risk_days = _query(built.url, "select max(risk_date) as last from marts.fct_enterprise_risk_daily")
    assert risk_days[0]["last"] == built.days[-1]


@pytest.mark.parametrize(
    ("table", "expected"),
    [("fct_power_anomalies", POWER_COLUMNS), ("fct_enterprise_risk_daily", RISK_COLUMNS)],
)
def test_the_marts_columns_are_exactly_the_contract(built: Built, table: str, expected: list[str]):
    columns = _query(
        built.url,
        "select column_name, ordinal_position from information_schema.columns "
        f"where table_schema = 'marts' and table_name = '{table}' order by ordinal_position",
    )
    assert [c["column_name"] for c in columns] == expected


def test_risk_levels_follow_the_thresholds_and_an_open_major_hazard_forces_red(built: Built):
    bands = _query(built.url, "select risk_level, min_index, max_index from reference.risk_level_thresholds")
    majors = {
        (r["enterprise_id"], r["risk_date"])
        for r in _query(
            built.url,
            "select enterprise_id, risk_date from intermediate.int_enterprise_risk_points "
            "where item = 'open_major_hazards' and item_value >= 1",
        )
    }
    rows = _query(built.url, "select * from marts.fct_enterprise_risk_daily")
    assert len(rows) >= 72 * (DAYS - 1)
    assert majors, "the simulated days have open major hazards"
    for row in rows:
        index = float(row["risk_index"])
        assert 0 <= index <= 100
        if (row["enterprise_id"], row["risk_date"]) in majors:
            assert row["risk_level"] == "red", row
            assert row["top_factors"].startswith("open major hazard"), row
        else:
            [band] = [b["risk_level"] for b in bands if b["min_index"] <= index < b["max_index"]]
            assert row["risk_level"] == band, row


def test_the_top_ten_are_explained_by_their_top_factors(built: Built):
    last = built.days[-1].isoformat()
    top = _query(
        built.url,
        "select enterprise_id, risk_index, top_factors from marts.fct_enterprise_risk_daily "
        f"where risk_date = date '{last}' order by risk_index desc, enterprise_id limit 10",
    )
    reasons = {}
    for r in _query(
        built.url,
        "select enterprise_id, reason, points from intermediate.int_enterprise_risk_points "
        f"where risk_date = date '{last}' and points > 0",
    ):
        reasons.setdefault(r["enterprise_id"], set()).add(r["reason"])
    assert len(top) == 10
    for row in top:
        named = row["top_factors"].split("; ")
        assert row["top_factors"] and 1 <= len(named) <= 3, row
        assert set(named) <= reasons[row["enterprise_id"]], row


def test_a_warning_detects_an_injected_anomaly_it_overlaps_within_one_interval():
    day = dt.date(2026, 5, 20)

    def at(hhmm: str) -> pd.Timestamp:
        return pd.Timestamp(f"2026-05-20 {hhmm}", tz="UTC")

    truth = pd.DataFrame(
        {
            "anomaly_id": ["t1", "t2", "t3"],
            "rule": ["overload", "surge", "overload"],
            "enterprise_id": ["E1", "E2", "E3"],
            "started_at": [at("02:00"), at("03:00"), at("05:00")],
            "ended_at": [at("02:30"), at("03:00"), at("05:15")],
            "day": [day] * 3,
        }
    )
    warnings = pd.DataFrame(
        {
            "anomaly_id": ["w1", "w2", "w3", "w4"],
            "rule": ["overload", "surge", "overload", "abnormal_fluctuation"],
            "enterprise_id": ["E1", "E2", "E3", "E1"],
            "started_at": [at("02:45"), at("03:15"), at("05:45"), at("02:00")],  # w3 is two intervals late
            "ended_at": [at("03:00"), at("03:15"), at("06:00"), at("02:30")],
            "day": [day] * 4,
        }
    )
    rows = {r["rule"]: r for r in score(warnings, truth, [day])}
    assert (rows["overload"]["detected"], rows["overload"]["injected"]) == (1, 2)
    assert (rows["overload"]["matched_warnings"], rows["overload"]["warnings"]) == (1, 2)
    assert rows["surge"]["recall"] == 1.0 and rows["surge"]["precision"] == 1.0
    assert rows["abnormal_fluctuation"]["precision"] == 0.0 and rows["abnormal_fluctuation"]["recall"] is None


def test_the_baselines_equal_a_median_mad_and_percentile_recomputed_in_pandas(built: Built):
    """The robust z-score's median and MAD per meter and slot, and the surge's step percentile per meter,
    of every baseline date (the first nine built at once from the rolling windows, the tenth by moving
    them along a day), recomputed from the sequenced readings of the days before each date."""
    thresholds = {
        (r["rule"], r["parameter"]): float(r["value"])
        for r in _query(built.url, "select rule, parameter, value from reference.anomaly_thresholds")
    }
    baseline_days = int(thresholds[("abnormal_fluctuation", "baseline_days")])
    fraction = thresholds[("surge", "step_percentile")]
    readings = pd.DataFrame(
        _query(
            built.url,
            "select meter_id, reading_date, slot_of_day, load_kw, step_kw"
            " from intermediate.int_power_readings_sequenced",
        )
    )
    readings["reading_date"] = pd.to_datetime(readings["reading_date"]).dt.date
    built_slots = pd.DataFrame(
        _query(
            built.url,
            "select meter_id, baseline_date, slot_of_day, median_load_kw, mad_load_kw, baseline_days"
            " from intermediate.int_power_slot_baselines",
        )
    )
    built_slots["baseline_date"] = pd.to_datetime(built_slots["baseline_date"]).dt.date
    built_steps = pd.DataFrame(
        _query(
            built.url,
            "select meter_id, baseline_date, step_percentile_kw, steps from intermediate.int_power_step_baselines",
        )
    )
    built_steps["baseline_date"] = pd.to_datetime(built_steps["baseline_date"]).dt.date
    dates = sorted(set(built_slots["baseline_date"]) | set(built_steps["baseline_date"]))
    assert set(built.days[1:]) <= set(dates) <= set(built.days)
    for day in dates:
        window = readings[
            (readings["reading_date"] < day)
            & (readings["reading_date"] >= day - dt.timedelta(days=baseline_days))
        ]
        slots = window.dropna(subset=["load_kw"]).groupby(["meter_id", "slot_of_day"])["load_kw"]
        expected = pd.DataFrame({"median": slots.median(), "count": slots.size()})
        deviation = (
            window["load_kw"] - window.groupby(["meter_id", "slot_of_day"])["load_kw"].transform("median")
        ).abs()
        expected["mad"] = deviation.groupby([window["meter_id"], window["slot_of_day"]]).median()
        on_day = built_slots[built_slots["baseline_date"] == day].set_index(["meter_id", "slot_of_day"])
        assert len(on_day) == len(expected) and (len(expected) > 0 or day == built.days[0]), day
        joined = on_day.join(expected, how="inner")
        assert len(joined) == len(expected), day
        assert (joined["median_load_kw"] - joined["median"]).abs().max() < 1e-9, day
        assert (joined["mad_load_kw"] - joined["mad"]).abs().max() < 1e-9, day
        assert (joined["baseline_days"] == joined["count"]).all(), day

        steps = window.dropna(subset=["step_kw"]).groupby("meter_id")["step_kw"]
        expected_steps = steps.quantile(fraction, interpolation="linear")
        steps_on_day = built_steps[built_steps["baseline_date"] == day].set_index("meter_id")
        assert len(steps_on_day) == len(expected_steps) and (
            len(expected_steps) > 0 or day == built.days[0]
        ), day
        difference = (steps_on_day["step_percentile_kw"] - expected_steps).abs()
        assert not (difference >= 1e-6).any() and difference.notna().all(), (
            day,
            difference.sort_values().tail(),
        )
        assert (steps_on_day["steps"] == steps.size().reindex(steps_on_day.index)).all(), day
