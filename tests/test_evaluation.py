"""`edw evaluate`: warnings paired one to one with the injected events (splits, the precedence's other
load rule, false alarms), false alarms per meter-week, judged days, and the exit status of the targets,
on hand-made frames and a tiny hand-made warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from emergency_dw.cli import main
from emergency_dw.evaluation import Truth, judged_days, missed_targets, pair, score, score_truth

DAY = dt.date(2026, 5, 20)
NOTHING = pd.DataFrame(columns=["kind", "enterprise_id", "subject_id", "started_at", "ended_at", "day"])


def at(hhmm: str, day: dt.date = DAY) -> pd.Timestamp:
    """A local time of ``day`` (Asia/Shanghai), in UTC."""
    return pd.Timestamp(f"{day} {hhmm}", tz="Asia/Shanghai").tz_convert("UTC")


def events(*rows: tuple) -> pd.DataFrame:
    """Injected events: (id, rule, enterprise, start, start of the last interval)."""
    frame = pd.DataFrame(rows, columns=["anomaly_id", "rule", "enterprise_id", "started_at", "ended_at"])
    return frame.assign(subject_id="M1", day=DAY)


def warnings(*rows: tuple) -> pd.DataFrame:
    """Warnings: (id, rule, enterprise, start, end of the last interval)."""
    return pd.DataFrame(rows, columns=["anomaly_id", "rule", "enterprise_id", "started_at", "ended_at"])


def rows_by_rule(warned: pd.DataFrame, injected: pd.DataFrame) -> dict[str, dict]:
    return {r["rule"]: r for r in score(warned, injected, [DAY])}


def test_an_event_split_in_three_warnings_counts_once_and_reports_two_splits():
    injected = events(("e1", "abnormal_fluctuation", "E1", at("10:00"), at("11:45")))
    warned = warnings(
        ("w1", "abnormal_fluctuation", "E1", at("09:45"), at("10:30")),
        ("w2", "abnormal_fluctuation", "E1", at("10:45"), at("11:15")),
        ("w3", "abnormal_fluctuation", "E1", at("11:30"), at("12:15")),
    )
    row = rows_by_rule(warned, injected)["abnormal_fluctuation"]
    assert (row["injected"], row["detected"], row["recall"]) == (1, 1, 1.0)
    assert (row["warnings"], row["matched_warnings"], row["splits"], row["false_alarms"]) == (3, 1, 2, 0)
    assert row["precision"] == pytest.approx(1 / 3)
    paired, _ = pair(warned, injected)
    assert sorted(paired["status"]) == ["match", "split", "split"]
    assert set(paired["event_id"]) == {"e1"}


def test_a_warning_of_another_load_rule_that_precedence_kept_detects_the_event():
    # an injected step that reached the contracted capacity: precedence keeps the overload warning
    injected = events(("e1", "abnormal_fluctuation", "E1", at("14:00"), at("15:45")))
    warned = warnings(("w1", "overload", "E1", at("14:30"), at("15:30")))
    rows = rows_by_rule(warned, injected)
    assert (
        rows["abnormal_fluctuation"]["detected"] == 1 and rows["abnormal_fluctuation"]["by_other_rule"] == 1
    )
    assert rows["overload"]["matched_warnings"] == 1 and rows["overload"]["false_alarms"] == 0
    assert rows["overload"]["injected"] == 0 and rows["overload"]["precision"] == 1.0


def test_its_own_rule_is_the_match_and_another_load_rule_a_split():
    injected = events(("e1", "overload", "E1", at("14:00"), at("15:00")))
    warned = warnings(
        ("w1", "abnormal_fluctuation", "E1", at("13:30"), at("14:15")),
        ("w2", "overload", "E1", at("14:00"), at("15:15")),
    )
    paired, detected = pair(warned, injected)
    assert dict(zip(paired["anomaly_id"], paired["status"], strict=True)) == {"w1": "split", "w2": "match"}
    assert detected["warning_rule"].tolist() == ["overload"]


def test_a_warning_on_another_meter_of_the_cable_or_an_interval_away_is_a_false_alarm():
    injected = events(("e1", "overload", "E1", at("02:00"), at("02:30")))  # intervals 02:00-02:45
    warned = warnings(
        ("w1", "overload", "E2", at("02:00"), at("02:45")),  # another enterprise's meter
        ("w2", "cable_over_temperature", "E1", at("02:00"), at("03:00")),  # the cable's rule family
        ("w3", "overload", "E1", at("03:00"), at("03:30")),  # an interval without warning between them
        ("w4", "overload", "E1", at("02:45"), at("03:15")),  # right after the event's last interval: slack
    )
    paired, _ = pair(warned, injected)
    assert dict(zip(paired["anomaly_id"], paired["status"], strict=True)) == {
        "w1": "false_alarm",
        "w2": "false_alarm",
        "w3": "false_alarm",
        "w4": "match",
    }


def test_one_warning_detects_one_event_only():
    injected = events(
        ("e1", "surge", "E1", at("03:00"), at("03:15")),
        ("e2", "surge", "E1", at("03:30"), at("03:45")),
    )
    warned = warnings(
        ("w1", "surge", "E1", at("03:00"), at("04:00")),  # overlaps both
        ("w2", "surge", "E1", at("03:00"), at("03:30")),  # overlaps the first only
    )
    row = rows_by_rule(warned, injected)["surge"]
    assert (row["detected"], row["matched_warnings"], row["splits"]) == (2, 2, 0)


def test_false_alarms_per_meter_week_near_misses_and_data_problems():
    injected = events(("e1", "overload", "E1", at("10:00"), at("10:30")))
    warned = warnings(
        ("w1", "overload", "E1", at("10:00"), at("10:45")),
        ("w2", "surge", "E2", at("06:00"), at("06:30")),  # on a near miss: a one-interval spike
        ("w3", "surge", "E3", at("08:00"), at("08:30")),  # right after a meter was offline
        ("w4", "cable_over_temperature", "E4", at("15:00"), at("15:45")),
    )
    near = pd.DataFrame(
        [
            ("spike", "E2", "M2", at("06:00"), at("06:00"), DAY),
            ("warm_cable", "E4", "C4", at("01:00"), at("02:00"), DAY),
        ],
        columns=NOTHING.columns,
    )
    quality = pd.DataFrame(
        [("meter_offline", "E3", "M3", at("05:00"), at("07:45"), DAY)], columns=NOTHING.columns
    )
    evaluation = score_truth(
        warned, Truth(injected, near, quality, frozenset([DAY])), [DAY], meter_weeks=20.0
    )
    assert evaluation.false_alarms == 3
    assert evaluation.false_per_meter_week == pytest.approx(3 / 20)
    assert evaluation.near_misses_warned == 1
    assert evaluation.near_misses.set_index("kind")["warned"].to_dict() == {"spike": 1, "warm_cable": 0}
    assert evaluation.false_alarms_in_data_quality == 1
    assert missed_targets(evaluation, max_false_per_meter_week=0.2) == []
    [line] = missed_targets(evaluation, max_false_per_meter_week=0.1)
    assert "0.150 > 0.1" in line and "3 false alarms over 20.0 meter-weeks" in line


def test_only_the_judged_days_count():
    later = DAY + dt.timedelta(days=1)
    injected = pd.concat(
        [
            events(("e1", "overload", "E1", at("10:00"), at("10:30"))),
            events(("e2", "overload", "E1", at("10:00", later), at("10:30", later))).assign(day=later),
        ]
    )
    warned = warnings(
        ("w1", "overload", "E1", at("10:00"), at("10:45")),
        ("w2", "surge", "E1", at("20:00", later), at("20:30", later)),
    )
    rows = {r["rule"]: r for r in score(warned, injected, [DAY])}
    assert (rows["overload"]["injected"], rows["overload"]["warnings"], rows["surge"]["warnings"]) == (
        1,
        1,
        0,
    )


def test_a_day_is_judged_when_half_of_its_meters_are():
    meter_days = pd.DataFrame(
        {
            "meter_id": ["M1", "M2", "M1", "M2", "M3"],
            "enterprise_id": ["E1", "E2", "E1", "E2", "E3"],
            "reading_date": [DAY, DAY, DAY + dt.timedelta(days=1)] + [DAY + dt.timedelta(days=1)] * 2,
            "is_judged": [True, False, True, False, False],
        }
    )
    assert judged_days(meter_days) == [DAY]


# ---------------------------------------------------------------- the command, on a tiny warehouse
def _tiny_warehouse(root: Path) -> None:
    """What `edw evaluate` reads: the warnings, the judged meter-days, the precedence seed; and the truth
    files of two simulated days (the first is history: no meter judged)."""
    history, judged = DAY - dt.timedelta(days=1), DAY
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    for schema in ("marts", "intermediate", "reference"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table marts.fct_power_anomalies as select * from (values "
        "('w1', 'E1', 'overload', timestamptz '2026-05-20 10:00+08', timestamptz '2026-05-20 10:45+08'),"
        "('w2', 'E1', 'overload', timestamptz '2026-05-20 10:45+08', timestamptz '2026-05-20 11:15+08'),"
        "('w3', 'E2', 'surge', timestamptz '2026-05-20 16:00+08', timestamptz '2026-05-20 16:30+08'),"
        "('w0', 'E2', 'surge', timestamptz '2026-05-19 16:00+08', timestamptz '2026-05-19 16:30+08')"
        ") as t(anomaly_id, enterprise_id, rule, started_at, ended_at)"
    )
    meter_days = [
        (meter, f"E{meter[1:]}", day, day == judged)
        for meter in ("M1", "M2", "M3")
        for day in (history, judged)
    ]
    con.execute(
        "create table intermediate.int_power_readings_scored (meter_id varchar, enterprise_id varchar, reading_date date, is_judged_day boolean)"
    )
    con.executemany("insert into intermediate.int_power_readings_scored values (?, ?, ?, ?)", meter_days)
    con.execute(
        "create table reference.anomaly_rule_precedence as select * from (values ('overload', 'load', 1),"
        "('suspension_violation', 'load', 2), ('surge', 'load', 3), ('abnormal_fluctuation', 'load', 4),"
        "('cable_over_temperature', 'cable', 1)) as t(rule, event_group, precedence)"
    )
    con.close()
    for day, rows in (
        (history, []),
        (
            judged,
            [
                (
                    "e1",
                    "overload",
                    "power_load_readings",
                    "E1",
                    "M1",
                    at("10:00"),
                    at("10:30"),
                    3,
                    950.0,
                    900.0,
                    "kW",
                )
            ],
        ),
    ):
        folder = root / "sources" / "truth" / day.isoformat()
        folder.mkdir(parents=True)
        columns = ["anomaly_id", "rule", "feed", "enterprise_id", "subject_id", "started_at", "ended_at"]
        frame = pd.DataFrame(rows, columns=[*columns, "intervals", "peak_value", "threshold", "unit"])
        frame.to_parquet(folder / "anomalies.parquet")


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _tiny_warehouse(tmp_path)
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return tmp_path


def test_edw_evaluate_reports_and_exits_0_when_the_targets_are_met(tiny: Path, capsys):
    # judged: 2026-05-20 (3 meters judged = 3/7 meter-week); w1 matches e1, w2 splits it, w3 is false
    assert main(["evaluate", "--min-recall", "1", "--max-false-per-meter-week", "3"]) == 0
    out = capsys.readouterr().out
    assert "judged days: 1 (2026-05-20); history: 1 (2026-05-19)" in out
    assert "false alarms per meter-week: 2.333 (1 over 0.4 meter-weeks)" in out
    assert "target missed" not in out


def test_edw_evaluate_exits_1_with_a_line_per_target_missed(tiny: Path, capsys):
    assert main(["evaluate", "--min-precision", "0.9", "--max-false-per-meter-week", "0.05"]) == 1
    missed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("target missed")]
    assert len(missed) == 3, missed
    assert any("precision of overload 0.50 < 0.90: 1 of 2 warnings" in line for line in missed)
    assert any("precision of surge 0.00 < 0.90" in line for line in missed)
    assert any("false alarms per meter-week 2.333 > 0.05" in line for line in missed)


def test_edw_evaluate_without_options_only_reports(tiny: Path):
    assert main(["evaluate"]) == 0


def test_real_curve_options_need_a_csv(tiny: Path, capsys):
    assert main(["evaluate", "--meters", "4"]) == 2
    assert "--meters: only with --real-curves CSV" in capsys.readouterr().out
