"""`edw evaluate --real-curves`: the CSV reader on small hand-written files, and one real run of the
whole pipeline on the reference campus curve (4 meters, 6 weeks, the last 2 judged)."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from emergency_dw.evaluation import RealCurveOptions, evaluate_real_curves, events_table, print_evaluation
from emergency_dw.simulator.real_curves import (
    PEAK_CEILING,
    RealCurveSimulator,
    SplicedMeter,
    read_load_curves,
)
from emergency_dw.simulator.run import ANOMALY_COLUMNS
from emergency_dw.warehouse import connect

CAMPUS = Path(__file__).resolve().parents[1] / "reference_data" / "load_curves" / "campus_substation.csv"


def write(tmp_path: Path, text: str, name: str = "curves.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_semicolons_and_decimal_commas_with_a_gap_a_zero_and_a_repeated_timestamp(tmp_path: Path):
    path = write(
        tmp_path,
        "Band;When;Load kW;Other\n"
        "F1;2024-03-04 00:00;151,6;2,5\n"
        "F1;2024-03-04 00:15;147,2;1\n"
        "F1;2024-03-04 00:15;999,9;9\n"  # the same interval again: the first row counts
        "F1;2024-03-04 00:45;0;0\n"  # 00:30 is missing: a gap
        "F1;2024-03-04 01:00;1.234,5;3\n",  # thousands point, decimal comma
    )
    curves = read_load_curves(path)
    assert curves.separator == ";" and curves.timestamp_column == "When"
    assert list(curves.loads.columns) == ["Load kW", "Other"]
    assert curves.skipped == {"Band": "not numbers"}
    assert (curves.rows, curves.duplicates) == (5, 1)
    load = curves.loads["Load kW"]
    assert load.index[0] == pd.Timestamp("2024-03-04 00:00") and load.index.freq == "15min"
    assert load.tolist()[:2] == [151.6, 147.2]
    assert np.isnan(load.iloc[2]) and load.iloc[3] == 0 and load.iloc[4] == 1234.5
    described = curves.describe()
    assert "5 rows (';'-separated)" in described and "2 readings missing" in described
    assert "2 zero readings (meter offline)" in described and "1 duplicated timestamp(s)" in described


def test_commas_and_decimal_points_and_a_chosen_column(tmp_path: Path):
    path = write(
        tmp_path,
        "timestamp,site_a,site_b,temperature\n"
        "2024-03-04T00:00:00,10.5,20,-1.5\n"
        "2024-03-04T00:15:00,11,21.25,-1\n"
        "2024-03-04T00:30:00,,22,0\n",  # an empty cell is a missing reading
    )
    curves = read_load_curves(path)
    assert curves.separator == "," and list(curves.loads.columns) == ["site_a", "site_b"]
    assert "negative values" in curves.skipped["temperature"]
    assert curves.loads["site_a"].iloc[:2].tolist() == [10.5, 11.0] and np.isnan(
        curves.loads["site_a"].iloc[2]
    )
    chosen = read_load_curves(path, columns=["site_b"])
    assert list(chosen.loads.columns) == ["site_b"]
    with pytest.raises(ValueError, match=r"no column \['site_c'\]"):
        read_load_curves(path, columns=["site_c"])


def test_day_first_timestamps_as_european_exports_write_them(tmp_path: Path):
    """dd.mm.yyyy, as SimBench's 2016 profiles and many European meter exports write it: 03.01.2016 is the
    3rd of January. Before, the reader took the first rows month-first, failed on the 13th, and found no
    column of date-times."""
    stamps = pd.date_range("2016-01-01 00:00", "2016-01-14 23:45", freq="15min")
    rows = [f"{t:%d.%m.%Y %H:%M};{k % 96 / 10:.6f}" for k, t in enumerate(stamps)]
    path = write(tmp_path, "time;G1-A_pload\n" + "\n".join(rows) + "\n")
    curves = read_load_curves(path)
    load = curves.loads["G1-A_pload"]
    assert curves.timestamp_column == "time" and curves.rows == len(stamps)
    assert load.index[0] == pd.Timestamp("2016-01-01 00:00") and load.index[-1] == pd.Timestamp(
        "2016-01-14 23:45"
    )
    assert load.loc[pd.Timestamp("2016-01-03 01:00")] == pytest.approx(0.4)  # the 3rd of January, not March
    assert load.notna().all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("meter;load\nA;1,5\nB;2,5\n", "no column of date-times"),
        ("when;band\n2024-03-04 00:00;F1\n2024-03-04 00:15;F2\n", "no numeric load column besides"),
        ("when;load\n2024-03-04;1\n2024-03-05;2\n2024-03-06;3\n", "1 days 00:00:00 apart, not 15 minutes"),
        ("", "the file is empty"),
    ],
)
def test_a_file_the_reader_cannot_use_fails_with_a_clear_message(tmp_path: Path, text: str, message: str):
    with pytest.raises(ValueError, match=message):
        read_load_curves(write(tmp_path, text))


def test_a_curve_shorter_than_the_weeks_asked_for_is_refused(tmp_path: Path):
    stamps = pd.date_range("2024-03-04", periods=3 * 7 * 96, freq="15min")
    frame = pd.DataFrame(
        {"when": stamps.strftime("%Y-%m-%d %H:%M"), "load": 100 + np.arange(len(stamps)) % 96}
    )
    path = tmp_path / "short.csv"
    frame.to_csv(path, sep=";", index=False)
    curves = read_load_curves(path)
    with pytest.raises(ValueError, match=r"no curve holds 42 days \(6 weeks, --weeks\) from a Monday"):
        RealCurveSimulator(tmp_path / "sources", curves, meters=2, weeks=6, judged_weeks=2)


# ---------------------------------------------------------------- one real run
@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("real-curves") / "run"
    output = io.StringIO()
    console = Console(file=output, width=160)
    options = RealCurveOptions(CAMPUS, ["TotalP"], meters=4, weeks=6, judged_weeks=2, keep=folder)
    evaluation = evaluate_real_curves(options, console)
    events_table(evaluation, console)  # what `edw evaluate --real-curves` prints after the run
    print_evaluation(evaluation, console)
    return evaluation, output.getvalue(), folder


def test_the_reference_curve_is_read_as_documented():
    curves = read_load_curves(CAMPUS)
    assert (curves.rows, curves.duplicates) == (108_092, 1)
    assert list(curves.loads.columns) == ["TotalP", "ChillerP", "Rad"]
    assert curves.start == pd.Timestamp("2013-06-01 00:00")


def test_the_report_adds_up(real_run):
    evaluation, output, _ = real_run
    plan = evaluation.plan
    judged = set(plan.judged_days)
    assert len(plan.meters) == 4 and len(judged) == 14 and plan.events
    assert {plan.day(e.day) for e in plan.events} <= judged
    assert len(evaluation.events) == len(plan.events)  # every injected event is listed and judged
    for event in evaluation.events["anomaly_id"]:
        assert event in output
    statuses = evaluation.warnings["status"]
    assert set(statuses) <= {"match", "split", "false_alarm"}
    assert set(evaluation.warnings["enterprise_id"]) <= set(plan.enterprise_ids)  # the spliced meters only
    matched_events = set(evaluation.warnings.loc[statuses == "match", "event_id"])
    assert matched_events == set(evaluation.events.loc[evaluation.events["detected"], "anomaly_id"])
    for row in evaluation.rows:
        assert row["warnings"] == row["matched_warnings"] + row["splits"] + row["false_alarms"], row
        assert row["detected"] <= row["injected"], row
    total = evaluation.rows[-1]
    assert total["injected"] == len(plan.events)
    assert evaluation.false_per_meter_week == pytest.approx(total["false_alarms"] / (4 * 14 / 7))
    assert "false alarms per meter-week" in output and "Real curve windows" in output
    assert re.search(r"dbt build of the power marts in [\d.]+ s: \d+ nodes, 0 not passed", output), output


def test_the_warnings_on_the_real_curve_meet_the_targets(real_run):
    """The issue's targets on real curves, on four windows of the campus substation: at most 0.05 false
    alarms per meter-week (here: none in 8 meter-weeks) and nine events in ten detected. A change to the
    rules or the seed that makes them noisy on real load fails here."""
    evaluation, _, _ = real_run
    assert evaluation.false_per_meter_week <= 0.05, evaluation.warnings[
        evaluation.warnings["status"] == "false_alarm"
    ]
    assert evaluation.total["recall"] >= 0.9, evaluation.events[~evaluation.events["detected"]]
    assert evaluation.near_misses_warned == 0 and evaluation.false_alarms_in_data_quality == 0


def test_the_spliced_meters_read_their_scaled_window(real_run):
    evaluation, _, folder = real_run
    plan = evaluation.plan
    meter: SplicedMeter = plan.meters[0]
    positive = meter.loads[meter.loads > 0]
    assert positive.max() <= PEAK_CEILING * meter.capacity_kw + 1e-6
    assert np.percentile(positive, 99) <= meter.peak_fraction * meter.capacity_kw + 1e-6
    day = plan.day(3)  # a history day: no event on it
    start = pd.Timestamp(dt.datetime.combine(day, dt.time()), tz="Asia/Shanghai")
    warehouse = connect(f"duckdb:///{folder / 'data' / 'warehouse.duckdb'}")
    try:
        rows = warehouse.query(
            "select reading_at, load_kw, voltage_v from raw.power_load_readings "
            "where meter_id = ? and reading_at >= ? and reading_at < ? order by reading_at",
            [meter.meter_id, start, start + pd.Timedelta(days=1)],
        ).to_pandas()
    finally:
        warehouse.close()
    expected = meter.loads[3]
    assert len(rows) == np.isfinite(expected).sum()
    slots = ((pd.to_datetime(rows["reading_at"], utc=True) - start) / pd.Timedelta(minutes=15)).astype(int)
    assert np.allclose(rows["load_kw"].to_numpy(), expected[slots], atol=0.001)
    assert ((rows["voltage_v"] == 0) == (rows["load_kw"] == 0)).all()


def test_the_injected_events_are_the_ground_truth(real_run):
    evaluation, _, folder = real_run
    plan = evaluation.plan
    event = plan.events[0]
    truth = pd.read_parquet(
        folder / "data" / "sources" / "truth" / plan.day(event.day).isoformat() / "anomalies.parquet"
    )
    assert list(truth.columns) == ANOMALY_COLUMNS
    spliced = truth[truth["enterprise_id"].isin(plan.enterprise_ids)]
    assert spliced["anomaly_id"].str.contains("-real-").all()  # the simulator's own events there are gone
    row = spliced.set_index("anomaly_id").loc[
        f"{plan.day(event.day):%Y%m%d}-real-{event.shape}-{event.meter:03d}"
    ]
    assert (row["rule"], row["intervals"]) == (event.rule, len(event.values))
