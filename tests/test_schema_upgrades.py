"""A release that changes an intermediate table's shape: the next build refuses to mix the two shapes, says
what to do, and `--full-refresh` rebuilds the table in its new shape. int_power_usual_profiles was one row
per meter, day and slot; it is one row per meter and day with lists of the 96 slots."""

from __future__ import annotations

from pathlib import Path

import pytest

from emergency_dw import cli
from emergency_dw.transform import run_dbt
from emergency_dw.warehouse import connect

from conftest import DayWarehouse, _copy_day_warehouse

# the table as the earlier release left it: a row per slot (one simulated day has no profile yet: a day of
# the old shape stands in for the history a real warehouse would hold)
OLD_SHAPE = """
    create or replace table intermediate.int_power_usual_profiles as
    select 'M-OLD' as meter_id, date '2026-01-05' as reading_date, cast(slot as integer) as slot_of_day,
        100.0 as usual_load_kw, 5.0 as usual_step_kw, cast(8 as bigint) as similar_readings,
        now() as _built_at
    from range(0, 96) as slots (slot)
"""


def test_a_table_of_an_earlier_shape_fails_the_build_with_what_to_do(
    day_warehouse: DayWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    day = _copy_day_warehouse(day_warehouse, tmp_path)
    monkeypatch.setenv("EDW_DATA_DIR", str(day.root / "data"))
    conn = connect(day.url)
    try:
        profiled = conn.query("select count(*) as n from intermediate.int_power_usual_profiles").to_pylist()[
            0
        ]["n"]
        with conn.transaction() as tx:
            tx.execute(OLD_SHAPE)
    finally:
        conn.close()

    run = run_dbt(["run", "--select", "int_power_usual_profiles"], warehouse_url=day.url)
    assert not run.success, "a build must not merge rows of the new shape into a table of the old one"
    messages = [r["message"] or "" for r in run.results] + [run.error or ""]
    hint = cli.schema_change_hint(messages)
    assert hint is not None, messages
    assert "edw build --full-refresh" in hint
    assert cli.schema_change_hint(["Database Error: relation does not exist"]) is None

    run = run_dbt(["run", "--select", "int_power_usual_profiles", "--full-refresh"], warehouse_url=day.url)
    assert run.success, run.error
    conn = connect(day.url)
    try:
        columns = [
            r["column_name"]
            for r in conn.query(
                "select column_name from information_schema.columns where table_schema = 'intermediate'"
                " and table_name = 'int_power_usual_profiles' order by ordinal_position"
            ).to_pylist()
        ]
        rows = conn.query("select meter_id from intermediate.int_power_usual_profiles").to_pylist()
    finally:
        conn.close()
    assert columns == [
        "meter_id",
        "reading_date",
        "usual_loads",
        "usual_steps",
        "similar_readings",
        "_built_at",
    ]
    assert len(rows) == profiled and "M-OLD" not in {r["meter_id"] for r in rows}, "the old rows are gone"
