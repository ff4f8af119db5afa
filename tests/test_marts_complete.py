"""Every public mart says something in every column, and the hazard loop is linked end to end by real keys,
on a small simulated day that went the real way in: every feed simulated, extracted through its connector,
validated and loaded into raw, then the dbt build of the whole project.

A column that is null in every row is a column a BI user cannot use: the hazard loop once shipped with
hazard_id, hazard_level, hazard_category and rectification_due_on empty in every row, because the grid
tasks carried keys no other feed knew."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from emergency_dw.config import LOCAL_TZ
from emergency_dw.pipeline.ingest import BatchFailed
from emergency_dw.transform import DBT_PROJECT
from emergency_dw.warehouse import connect

from conftest import DAY, DayWarehouse

# Columns that may legitimately be null in every row of a one-day warehouse at the test's scale, with the
# reason. Keep this short: each entry is a column a user of that small warehouse sees empty.
MAY_BE_EMPTY: dict[tuple[str, str], str] = {}
# The power rules that judge a day on its own readings; surge and abnormal_fluctuation compare a day with
# its similar days of the last 56, which a one-day warehouse does not hold, so their tasks stay unlinked.
RULES_WITHOUT_HISTORY = {"overload", "suspension_violation", "cable_over_temperature"}


@dataclass
class Built:
    url: str
    sources: Path


@pytest.fixture(scope="module")
def built(day_warehouse: DayWarehouse) -> Built:
    """The session's simulated day (every feed, conftest.SCALE) ingested for real into a fresh DuckDB
    warehouse, then the build of the whole project (models, seeds, data tests and dbt's unit tests): the
    session's day_warehouse, which test_ingest checks too and this module only reads."""
    failed = {name: str(r) for name, r in day_warehouse.results.items() if isinstance(r, BatchFailed)}
    assert not failed, failed
    outcome = day_warehouse.build
    assert outcome.success, outcome.error or [
        (r["node"], r["message"]) for r in outcome.results if r["status"] not in ("success", "pass")
    ]
    return Built(day_warehouse.url, day_warehouse.root / "data" / "sources")


def _frame(url: str, sql: str) -> pd.DataFrame:
    warehouse = connect(url)
    try:
        return warehouse.query(sql).to_pandas()
    finally:
        warehouse.close()


@pytest.fixture(scope="module")
def lifecycle(built: Built) -> pd.DataFrame:
    return _frame(built.url, "select * from marts.fct_hazard_lifecycle")


@pytest.fixture(scope="module")
def defective_keys(built: Built) -> set[str]:
    """Keys of the records the simulator made defective (quarantined, not in staging): a task raised by
    one of them cannot link, and is left out of the checks below."""
    defects = pd.read_parquet(built.sources / "truth" / DAY.isoformat() / "defects.parquet")
    return set(defects["record_key"].astype(str))


def _tasks_of_the_day(lifecycle: pd.DataFrame, source: str, defective_keys: set[str]) -> pd.DataFrame:
    """Tasks raised on the warehouse's day by ``source``: the record they name was delivered the same day
    (tasks of earlier days come again when their status changes, naming records delivered before this
    warehouse's first day)."""
    tasks = lifecycle[
        (lifecycle["source"] == source)
        & (pd.to_datetime(lifecycle["created_date"]).dt.date == DAY)
        & ~lifecycle["source_ref_id"].isin(defective_keys)
    ]
    assert len(tasks) >= 1, f"the simulated day should raise {source} tasks"
    return tasks


def _local_day(times: pd.Series) -> pd.Series:
    """The local (Asia/Shanghai) calendar day of UTC timestamps, as naive midnights (NaT stays NaT)."""
    return pd.to_datetime(times, utc=True).dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).dt.normalize()


def test_no_mart_column_is_null_in_every_row(built: Built):
    relations = _frame(
        built.url,
        "select table_name from information_schema.tables where table_schema = 'marts' order by table_name",
    )["table_name"].tolist()
    assert {"fct_hazard_lifecycle", "fct_power_anomalies", "fct_incident_response"} <= set(relations)
    empty = []
    for relation in relations:
        frame = _frame(built.url, f"select * from marts.{relation}")
        assert len(frame), f"marts.{relation} has no rows"
        empty += [
            f"{relation}.{column}"
            for column in frame.columns
            if frame[column].isna().all() and (relation, column) not in MAY_BE_EMPTY
        ]
    assert not empty, f"null in every row: {empty}"


def test_inspection_tasks_carry_their_hazard(lifecycle: pd.DataFrame, defective_keys: set[str]):
    tasks = _tasks_of_the_day(lifecycle, "hazard_inspection", defective_keys)
    for column in ("hazard_id", "hazard_level", "hazard_category", "warning_at"):
        assert tasks[column].notna().all(), tasks.loc[tasks[column].isna(), ["task_id", "source_ref_id"]]
    assert (tasks["hazard_id"] == tasks["source_ref_id"]).all()
    rectifiable = tasks[tasks["current_status"] != "false_alarm"]
    assert rectifiable["rectification_due_on"].notna().all()


def test_scan_tasks_carry_their_hazard_report(lifecycle: pd.DataFrame, defective_keys: set[str]):
    tasks = _tasks_of_the_day(lifecycle, "guardian_scan", defective_keys)
    assert tasks["guardian_scan_id"].notna().all(), tasks.loc[tasks["guardian_scan_id"].isna(), "task_id"]
    assert (tasks["guardian_scan_id"] == tasks["source_ref_id"]).all()


def test_power_tasks_link_to_a_warning_of_the_warehouse(
    built: Built, lifecycle: pd.DataFrame, defective_keys: set[str]
):
    warnings = _frame(built.url, "select anomaly_id, enterprise_id, rule from marts.fct_power_anomalies")
    power = lifecycle[lifecycle["source"] == "power_warning"]
    linked = power[power["anomaly_id"].notna()]
    # every link is to a warning the warehouse holds, of the enterprise the task names, with its rule
    joined = linked.merge(warnings, on="anomaly_id", how="left", suffixes=("", "_warning"))
    assert joined["rule"].notna().all(), "a task links to an anomaly_id fct_power_anomalies does not hold"
    assert (joined["enterprise_id"] == joined["enterprise_id_warning"]).all()
    assert (joined["anomaly_rule"] == joined["rule"]).all()
    # Most tasks raised for the day's injected anomalies link. Not all: a warning of a rule that needs
    # history (RULES_WITHOUT_HISTORY) cannot be raised in a one-day warehouse, and an anomaly whose readings
    # were made defective (quarantined) or fell into a data problem may go unwarned; such tasks stay unlinked.
    truth = pd.read_parquet(built.sources / "truth" / DAY.isoformat() / "anomalies.parquet")
    truth["ref"] = [
        f"{e}@{s:%Y-%m-%dT%H:%M:%SZ}"
        for e, s in zip(truth["enterprise_id"], pd.to_datetime(truth["started_at"], utc=True), strict=True)
    ]
    judged = truth.loc[truth["rule"].isin(RULES_WITHOUT_HISTORY), "ref"]
    tasks = _tasks_of_the_day(power, "power_warning", defective_keys)
    tasks = tasks[tasks["source_ref_id"].isin(set(judged))]
    assert len(tasks) >= 2, "the simulated day should raise tasks for warnings a one-day warehouse can judge"
    assert tasks["anomaly_id"].notna().mean() >= 0.6, tasks[["source_ref_id", "anomaly_id"]]


def test_false_alarms_are_closed_and_never_overdue(lifecycle: pd.DataFrame):
    false_alarms = lifecycle[lifecycle["current_status"] == "false_alarm"]
    assert len(false_alarms) >= 1, "the simulated day should close some tasks as false alarms"
    assert false_alarms["is_closed"].all()
    assert false_alarms["closed_at"].notna().all()
    assert not false_alarms["is_overdue"].any()
    assert false_alarms["rectified_at"].isna().all() and false_alarms["rectification_due_on"].isna().all()
    open_tasks = lifecycle[~lifecycle["current_status"].isin(["closed", "false_alarm"])]
    assert not open_tasks["is_closed"].any()


def test_a_warning_comes_before_the_task_it_raised(lifecycle: pd.DataFrame):
    warned = lifecycle[lifecycle["warning_at"].notna()]
    # every kind of warning the warehouse holds dates its tasks: inspections, scans and power warnings
    assert {"hazard_inspection", "guardian_scan", "power_warning"} <= set(warned["source"])
    late = warned[pd.to_datetime(warned["warning_at"]) > pd.to_datetime(warned["created_at"])]
    assert late.empty, late[["task_id", "source", "warning_at", "created_at"]]
    assert (warned["warning_to_task_hours"].dropna() >= 0).all()
    assert warned["warning_to_task_hours"].notna().all()


def test_overdue_is_judged_against_the_seed_targets_and_the_hazards_due_date(lifecycle: pd.DataFrame):
    """A finished step longer than its seed target makes the task overdue; a linked hazard's own due date,
    not the seed, judges its rectification (a task rectified after it is overdue, one still open is overdue
    once the feed's latest change is past it)."""
    targets = pd.read_csv(DBT_PROJECT / "seeds" / "hazard_loop_targets.csv").set_index("step")["target_hours"]
    judged = lifecycle[lifecycle["current_status"] != "false_alarm"]
    for step in ("assignment", "verification", "closing"):
        slow = judged[judged[f"{step}_hours"] > targets[step]]
        assert slow["is_overdue"].all(), (step, slow["task_id"].tolist())
    unlinked = judged[judged["rectification_due_on"].isna()]
    assert unlinked.loc[unlinked["rectification_hours"] > targets["rectification"], "is_overdue"].all()
    due = judged[judged["rectification_due_on"].notna()]
    assert len(due) >= 1, "a task raised by an inspection hazard should be judged by the hazard's due date"
    due_on = pd.to_datetime(due["rectification_due_on"])
    rectified_on = _local_day(due["rectified_at"])
    open_rectification = due["current_status"].isin(["verified", "rectifying"])
    late = (rectified_on > due_on) | (open_rectification & (_local_day(due["status_as_of_at"]) > due_on))
    assert (~late | due["is_overdue"]).all(), due.loc[late & ~due["is_overdue"], "task_id"].tolist()
    assert (lifecycle["is_overdue"] == lifecycle["overdue_step"].notna()).all()
