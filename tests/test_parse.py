"""A department's 1/0 column keeps its meaning through a spreadsheet's export, and a missing value in
one never turns a whole file's column into something the parser must reject."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa

from emergency_dw import catalog
from emergency_dw.connectors import extract
from emergency_dw.pipeline.parse import parse_batch
from emergency_dw.simulator.writers import write_drop

SCHOOL = {
    "school_id": "SSC000001",
    "name": "灵溪镇第一小学",
    "school_type": "primary",
    "town_code": "330327100",
    "lat": "27.45",
    "lon": "120.44",
    "students": "818",
    "updated_at": "2026-10-03 14:22:19",
}


def _schools(is_shelter: list) -> pa.Table:
    feed = catalog.get_feed("schools")
    rows = [dict(SCHOOL, school_id=f"SSC{k:06d}", is_shelter=v) for k, v in enumerate(is_shelter)]
    return pa.Table.from_pylist(
        [{feed.column(name).header: value for name, value in row.items()} for row in rows]
    )


def test_a_spreadsheets_one_and_zero_as_decimals_are_booleans():
    parsed = parse_batch(catalog.get_feed("schools"), _schools(["1.0", "0.0", "1", "否", None]))
    assert parsed.frame["is_shelter"].tolist() == [True, False, True, False, pd.NA]
    assert parsed.type_errors == {}


def test_any_other_number_in_a_boolean_column_is_a_type_error():
    parsed = parse_batch(catalog.get_feed("schools"), _schools(["1.0", "2.0", "0.5"]))
    assert parsed.frame["is_shelter"].tolist() == [True, pd.NA, pd.NA]
    assert sorted(parsed.type_errors) == [1, 2]
    assert "is_shelter: '2.0' is not a valid boolean" in parsed.type_errors[1]


def test_a_missing_boolean_leaves_the_other_rows_of_a_departments_file_readable(tmp_path: Path, monkeypatch):
    # the simulated department writes 1/0 and an empty cell, as its export does, whatever the format
    monkeypatch.setenv("EDW_DROP_ROOT", str(tmp_path / "data" / "sources" / "drop"))
    feed = catalog.get_feed("schools")
    day = dt.date(2026, 11, 20)
    frame = pd.DataFrame(
        [dict(SCHOOL, school_id=f"SSC{k:06d}", is_shelter=v) for k, v in enumerate([True, False, None])]
    )
    frame["is_shelter"] = frame["is_shelter"].astype("boolean")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"]).dt.tz_localize("Asia/Shanghai")
    (path,) = write_drop(tmp_path / "data" / "sources", feed, day, frame)
    text = path.read_bytes().decode(feed.encoding)
    assert [line.rsplit(",", 1)[1] for line in text.splitlines()[1:]] == ["1", "0", ""]
    start = dt.datetime(2026, 11, 19, 16, tzinfo=dt.UTC)
    delivered = extract(feed, start, start + dt.timedelta(days=1)).table
    parsed = parse_batch(feed, delivered)
    assert parsed.frame["is_shelter"].tolist() == [True, False, pd.NA]
    assert parsed.type_errors == {}
