"""The catalog: coverage of departments and feeds, consistent declarations, and the `edw catalog` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from emergency_dw import catalog
from emergency_dw.catalog.references import EVENT_TYPE_CODES, TOWNS


def test_catalog_covers_22_departments_the_utility_and_the_towns():
    kinds = {d.kind for d in catalog.DEPARTMENTS}
    departments = [d for d in catalog.DEPARTMENTS if d.kind == "department"]
    assert len(departments) >= 22
    assert {"utility", "town"} <= kinds
    assert len(catalog.FEEDS) >= 30
    used = {f.department for f in catalog.FEEDS}
    assert used == {d.code for d in catalog.DEPARTMENTS}, "every provider delivers at least one feed"


def test_the_18_towns_of_cangnan_by_name():
    names = {t.name_zh for t in TOWNS}
    assert len(TOWNS) == 18 and len(names) == 18
    assert {"灵溪镇", "矾山镇", "马站镇", "金乡镇", "霞关镇", "凤阳畲族乡"} <= names


def test_every_feed_declares_key_schedule_columns_zone_and_encoding():
    for feed in catalog.FEEDS:
        assert feed.primary_key and all(not feed.column(k).nullable for k in feed.primary_key), feed.name
        assert feed.schedule and feed.timezone == "Asia/Shanghai" and feed.encoding
        assert feed.incremental_field == "updated_at"
        assert feed.rows_per_day > 0
        for col in feed.columns:
            if col.allowed:
                assert len(set(col.allowed)) == len(col.allowed)


def test_all_three_connector_kinds_and_file_formats_are_used():
    kinds = {f.connector_kind for f in catalog.FEEDS}
    assert kinds == {"http_json", "sql", "file_drop"}
    formats = {f.connector.format for f in catalog.FEEDS if f.connector_kind == "file_drop"}
    assert formats == {"csv", "xlsx", "parquet"}
    assert any(f.encoding == "gb18030" for f in catalog.FEEDS)
    xlsx = [f for f in catalog.FEEDS if f.connector_kind == "file_drop" and f.connector.format == "xlsx"]
    assert all(any(c.source_name and not c.source_name.isascii() for c in f.columns) for f in xlsx), (
        "Chinese headers"
    )


def test_public_contracts_of_key_feeds():
    power = catalog.get_feed("power_load_readings")
    assert power.column_names[:6] == [
        "meter_id",
        "enterprise_id",
        "reading_at",
        "load_kw",
        "current_a",
        "voltage_v",
    ]
    for name in ("alerts_110", "alerts_119", "alerts_120"):
        alert = catalog.get_feed(name)
        assert alert.column_names[:10] == [
            "incident_id",
            "channel",
            "event_type_code",
            "priority",
            "town_code",
            "received_at",
            "lat",
            "lon",
            "caller_phone",
            "description",
        ]
        assert alert.column("caller_phone").pii
        assert set(alert.column("event_type_code").allowed) == set(EVENT_TYPE_CODES)
    dispatch = catalog.get_feed("dispatch_records")
    assert dispatch.primary_key == ("incident_id", "unit_id")
    assert all(dispatch.column(c).nullable for c in ("en_route_at", "on_scene_at", "cleared_at"))
    assert catalog.get_feed("rescuers").pii_columns == ["name", "id_number", "phone"]


def test_a_file_per_town_is_declared_on_the_feed_and_checked():
    from emergency_dw.catalog import FileDrop
    from emergency_dw.catalog.columns import key, updated_at

    assert [f.name for f in catalog.FEEDS if getattr(f.connector, "per_town", False)] == [
        "town_incident_reports"
    ]
    with pytest.raises(ValueError, match=r"per_town needs a pattern with two \*"):
        FileDrop(folder="towns/x", format="csv", pattern="x_*.csv", per_town=True)
    drop = FileDrop(folder="towns/x", format="csv", pattern="*_x_*.csv", per_town=True)
    with pytest.raises(ValueError, match="x: a file per town needs a town_code column"):
        catalog.Feed("x", "towns", "X", drop, ("x_id",), (key("x_id"), updated_at()), rows_per_day=1)


def test_how_old_a_record_may_be_follows_from_what_the_feed_is():
    """A snapshot's reference data may go unchanged for years, an event reaches its feed within a week, and
    the feeds of work items re-sent for weeks as they change say so; nothing may lie a day ahead."""
    from emergency_dw.catalog.columns import key, updated_at
    from emergency_dw.catalog.model import (
        EVENT_MAX_AGE_DAYS,
        MAX_AHEAD_DAYS,
        REFERENCE_MAX_AGE_DAYS,
        WORK_ITEM_MAX_AGE_DAYS,
    )

    assert EVENT_MAX_AGE_DAYS < WORK_ITEM_MAX_AGE_DAYS < REFERENCE_MAX_AGE_DAYS
    work_items = {"evaluation_projects", "grid_tasks", "hazard_inspections"}
    for feed in catalog.FEEDS:
        if feed.snapshot:
            implied = REFERENCE_MAX_AGE_DAYS
        elif feed.name in work_items:
            implied = WORK_ITEM_MAX_AGE_DAYS
        else:
            implied = EVENT_MAX_AGE_DAYS
        assert feed.max_age_days == implied, feed.name
        assert feed.max_ahead_days == MAX_AHEAD_DAYS, feed.name

    # left out, the feed's kind gives it; declared, the declaration stands; a negative age is refused
    def declare(**facts) -> catalog.Feed:
        api = catalog.HttpJson("x", "x")
        return catalog.Feed(
            "x", "yjj", "X", api, ("x_id",), (key("x_id"), updated_at()), rows_per_day=1, **facts
        )

    assert declare(snapshot=True).max_age_days == REFERENCE_MAX_AGE_DAYS
    assert declare().max_age_days == EVENT_MAX_AGE_DAYS
    declared = declare(max_age_days=WORK_ITEM_MAX_AGE_DAYS, max_ahead_days=0)
    assert (declared.max_age_days, declared.max_ahead_days) == (WORK_ITEM_MAX_AGE_DAYS, 0)
    with pytest.raises(ValueError, match="feed x: max_age_days is a number of days"):
        declare(max_age_days=-1)


def test_unknown_feed_error_says_where_to_look():
    try:
        catalog.get_feed("no_such_feed")
    except KeyError as exc:
        assert "edw catalog" in str(exc)
    else:
        raise AssertionError("an unknown feed must raise")


def _edw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emergency_dw.cli", *args], capture_output=True, text=True, check=True
    )


def test_edw_catalog_prints_every_feed_as_a_table():
    out = _edw("catalog").stdout
    for feed in catalog.FEEDS:
        assert feed.name in out
    assert "1,378,080" in out and "应急管理局" in out and "file_drop" in out
    assert "max age (days)" in out and "7,300" in out


def test_edw_catalog_json_lists_feeds_with_their_columns():
    feeds = json.loads(_edw("catalog", "--json").stdout)
    assert len(feeds) == len(catalog.FEEDS)
    for entry in feeds:
        assert {"feed", "department", "connector", "schedule", "columns"} <= set(entry)
        assert entry["connector"]["kind"] in ("http_json", "sql", "file_drop")
        assert all({"name", "type", "nullable", "pii"} <= set(c) for c in entry["columns"])
    boiler = next(e for e in feeds if e["feed"] == "boiler_inventory")
    assert boiler["encoding"] == "gb18030"
    assert {entry["feed"]: entry["max_age_days"] for entry in feeds} == {
        f.name: f.max_age_days for f in catalog.FEEDS
    }


def test_reference_seeds_and_staging_models_are_in_step_with_the_catalog():
    from pathlib import Path

    from emergency_dw.catalog.seeds import reference_seeds

    project = Path(__file__).resolve().parents[1] / "dbt_project"
    for name, text in reference_seeds().items():
        assert (project / "seeds" / name).read_text(encoding="utf-8") == text, (
            f"run `edw catalog --seeds dbt_project/seeds` ({name})"
        )
    for feed in catalog.FEEDS:
        model = project / "models" / "staging" / feed.department / f"stg_{feed.department}__{feed.name}.sql"
        assert model.exists(), f"no staging model for {feed.name}: python tools/generate_staging.py"
        sql = model.read_text(encoding="utf-8")
        # the source is named after the department that owns it (schema raw): the lineage says who sent it
        assert f"source('{feed.department}', '{feed.name}')" in sql, (
            feed.name,
            "source not named after its department",
        )
        sources = yaml.safe_load(
            (model.parent / f"_{feed.department}__sources.yml").read_text(encoding="utf-8")
        )
        [source] = sources["sources"]
        assert source["name"] == feed.department and source["schema"] == "raw"
        assert feed.name in {t["name"] for t in source["tables"]}
        for col in feed.columns:
            assert (f"hash_pii('{col.name}')" in sql) if col.pii else (col.name in sql), (feed.name, col.name)
