"""`edw ingest FEED --file PATH`: a department's file is a batch of the days it covers, found in its records
(or given with --from/--to), not of the day it happens to be loaded; the user is told per failed rule what
was held."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from emergency_dw import catalog, cli
from emergency_dw.config import LOCAL_TZ
from emergency_dw.pipeline.file_interval import covered_days
from emergency_dw.pipeline.ingest import land_file, validate_and_load
from emergency_dw.warehouse import connect

# a week of dispatches well before any day these tests run on, in a file whose name carries no date
WEEK = [dt.date(2025, 3, 3) + dt.timedelta(days=k) for k in range(7)]
HEADER = "incident_id,unit_id,team_id,dispatched_at,en_route_at,on_scene_at,cleared_at,updated_at\n"


def _dispatch(day: dt.date, k: int) -> str:
    at = dt.datetime.combine(day, dt.time(9 + k, 15))
    stamp = [at + dt.timedelta(minutes=m) for m in (0, 1, 9, 60, 61)]
    cells = ",".join(f"{t:%Y-%m-%d %H:%M:%S}" for t in stamp)
    return f"I{day:%m%d}{k},U{k},T{k % 3},{cells}\n"


def _export(path: Path, days: list[dt.date], per_day: int = 2, extra: str = "") -> Path:
    body = "".join(_dispatch(day, k) for day in days for k in range(per_day))
    path.write_text(HEADER + body + extra, encoding="utf-8")
    return path


@pytest.fixture
def warehouse_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    return url


def _batch(url: str, batch_id: str) -> dict:
    warehouse = connect(url)
    try:
        return warehouse.query("select * from audit.batches where batch_id = ?", [batch_id]).to_pylist()[0]
    finally:
        warehouse.close()


def _local(moment) -> dt.datetime:
    moment = pd.Timestamp(moment)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
    return moment.tz_convert(LOCAL_TZ).to_pydatetime().replace(tzinfo=None)


def test_a_historic_export_without_a_date_in_its_name_is_judged_by_its_own_days(
    tmp_path: Path, warehouse_url: str
):
    export = _export(tmp_path / "dispatch_export.csv", WEEK)
    landed = land_file("dispatch_records", export)
    result = validate_and_load(landed)

    assert (result.rows_extracted, result.rows_loaded, result.rows_quarantined) == (14, 14, 0)
    window = {o.name: o for o in result.outcomes}["event_time_in_window"]
    assert window.success, "a past week's records are not out of window"
    assert f"dt={WEEK[0]}" in Path(landed.path).parts, "the file lands under the first day it covers"
    batch = _batch(warehouse_url, landed.batch_id)
    assert _local(batch["interval_start"]) == dt.datetime.combine(WEEK[0], dt.time())
    assert _local(batch["interval_end"]) == dt.datetime.combine(WEEK[-1] + dt.timedelta(days=1), dt.time())
    assert landed.covers == f"{WEEK[0]} .. {WEEK[-1]} (the dispatched_at of its records)"


def test_a_stray_record_does_not_stretch_the_files_days_and_is_held(tmp_path: Path, warehouse_url: str):
    stray = _dispatch(dt.date(1970, 1, 1), 0).replace("I01010", "STRAY")
    export = _export(tmp_path / "dispatch_export.csv", WEEK, extra=stray)
    landed = land_file("dispatch_records", export)
    result = validate_and_load(landed)

    assert landed.covers.startswith(f"{WEEK[0]} .. {WEEK[-1]}")
    assert (result.rows_loaded, result.rows_quarantined) == (14, 1)
    failed = {o.name: o.unexpected_count for o in result.outcomes if not o.success and not o.skipped}
    assert failed["event_time_in_window"] == 1


def test_from_and_to_name_the_days_of_a_file(tmp_path: Path, warehouse_url: str):
    export = _export(tmp_path / "dispatch_export.csv", WEEK)
    first, last = dt.date(2025, 3, 1), dt.date(2025, 3, 31)
    landed = land_file("dispatch_records", export, first, last)
    validate_and_load(landed)
    assert f"dt={first}" in Path(landed.path).parts
    batch = _batch(warehouse_url, landed.batch_id)
    assert _local(batch["interval_start"]) == dt.datetime.combine(first, dt.time())
    assert _local(batch["interval_end"]) == dt.datetime(2025, 4, 1)
    assert landed.covers == "2025-03-01 .. 2025-03-31 (given with --from/--to)"

    # the user's days win over the records': a month named wrongly holds the week as out of window
    later = _export(tmp_path / "dispatch_export_2.csv", WEEK[:1])
    held = validate_and_load(land_file("dispatch_records", later, dt.date(2025, 6, 1), dt.date(2025, 6, 30)))
    assert held.rows_loaded == 0 and held.rows_quarantined == 2


def test_edw_ingest_file_reports_its_days_and_what_each_failed_rule_held(
    tmp_path: Path, warehouse_url: str, capsys: pytest.CaptureFixture
):
    stray = _dispatch(dt.date(1970, 1, 1), 0).replace("I01010", "STRAY")
    export = _export(tmp_path / "dispatch_export.csv", WEEK, extra=stray)
    assert cli.main(["ingest", "dispatch_records", "--file", str(export)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"covering {WEEK[0]} .. {WEEK[-1]} (the dispatched_at of its records)" in out
    assert "quarantined 1" in out
    assert "event_time_in_window" in out and "quarantined" in out
    assert "edw quarantine replay dispatch_records" in out

    assert cli.main(["ingest", "dispatch_records", "--file", str(export), "--from", "2025-03-01"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "covering 2025-03-01 (given with --from/--to)" in out


def test_to_without_from_and_from_without_a_file_are_refused(tmp_path: Path, warehouse_url: str):
    export = _export(tmp_path / "dispatch_export.csv", WEEK)
    with pytest.raises(ValueError, match="--from"):
        land_file("dispatch_records", export, None, dt.date(2025, 3, 9))
    with pytest.raises(ValueError, match="--file"):
        cli.cmd_ingest(cli.build_parser().parse_args(["ingest", "dispatch_records", "--from", "2025-03-01"]))


def test_covered_days_keep_the_group_of_most_records():
    days = pd.Series([dt.date(2025, 3, 3)] * 5 + [dt.date(2025, 3, 5)] * 3 + [dt.date(1970, 1, 1)])
    assert covered_days(days, today=dt.date(2026, 1, 1)) == (dt.date(2025, 3, 3), dt.date(2025, 3, 5))
    future = pd.Series([dt.date(2025, 3, 3), dt.date(2205, 3, 3)])
    assert covered_days(future, today=dt.date(2026, 1, 1)) == (dt.date(2025, 3, 3), dt.date(2025, 3, 3))
    assert covered_days(pd.Series([], dtype=object), today=dt.date(2026, 1, 1)) is None


def test_a_snapshot_file_is_dated_by_its_name(tmp_path: Path, warehouse_url: str):
    export = tmp_path / "schools_20250303.csv"
    export.write_text(
        "school_id,name,school_type,town_code,lat,lon,students,is_shelter,updated_at\n"
        "SC1,灵溪一小,primary,330327100,27.5,120.41,900,1,2025-03-02 09:00:00\n",
        encoding="utf-8",
    )
    landed = land_file("schools", export)
    assert landed.covers == "2025-03-03 (the date in the file's name)"
    assert validate_and_load(landed).rows_loaded == 1
    assert json.loads(json.dumps(landed.to_xcom()))["covers"] == landed.covers
    assert catalog.get_feed("schools").snapshot
