"""Expectation suites: one per feed, their generated part in step with the catalog, severities valid."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from emergency_dw import catalog
from emergency_dw.catalog.columns import key, timestamp, updated_at
from emergency_dw.catalog.model import EVENT_MAX_AGE_DAYS, MAX_AHEAD_DAYS, REFERENCE_MAX_AGE_DAYS
from emergency_dw.pipeline import suites
from emergency_dw.pipeline.batch import day_interval
from emergency_dw.pipeline.rules import resolve_rules


def test_every_suite_file_is_a_feeds_and_in_step_with_the_catalog():
    names = {feed.name for feed in catalog.FEEDS}
    files = sorted(suites.expectations_dir().glob("*.json"))
    assert files, "expectations/ holds the hand-written rules"
    strays = [path.name for path in files if path.stem not in names]
    assert not strays, f"suites of no catalog feed: {strays}"
    for feed in catalog.FEEDS:
        path = suites.suite_path(feed)
        if not path.exists():
            assert suites.load_suite(feed)["rules"] == []  # the catalog's rules alone
            continue
        on_disk = json.loads(path.read_text(encoding="utf-8"))
        assert on_disk["feed"] == feed.name
        assert on_disk["generated_from_catalog"] == suites.catalog_rules(feed), (
            f"{path.name} is stale: edw expectations --write"
        )
        for rule in suites.all_rules(on_disk):
            assert rule["severity"] in suites.SEVERITIES
            assert rule["description"]
        assert on_disk["rules"], (
            f"{path.name} holds no hand-written rules: delete it (the catalog's need none)"
        )
        copies = [r["name"] for r in on_disk["rules"] if r in on_disk["generated_from_catalog"]]
        assert not copies, f"{path.name}: hand-written copies of the catalog's rules {copies}: remove them"


def test_domain_rules_asked_for_are_there():
    names = {
        feed.name: {
            r["name"]
            for r in suites.load_suite(feed)["rules"] + suites.load_suite(feed)["generated_from_catalog"]
        }
        for feed in catalog.FEEDS
    }
    assert {"order__dispatched_at__en_route_at", "order__en_route_at__on_scene_at"} <= names[
        "dispatch_records"
    ]
    assert {"power_factor_physical", "enterprise_known", "row_count_in_band"} <= names["power_load_readings"]
    assert "in_set__town_code" in names["alerts_110"] and "in_set__event_type_code" in names["alerts_110"]
    for feed in catalog.FEEDS:  # the catalog's window rules: every feed's update, every event time
        windows = {"updated_at_in_window"} | ({"event_time_in_window"} if feed.event_time else set())
        assert windows <= names[feed.name], feed.name


def _declare(**facts) -> catalog.Feed:
    """A feed of the Civil Affairs Bureau that has no suite file."""
    columns = (key("depot_id"), timestamp("stocked_at"), updated_at())
    api = catalog.HttpJson("mzj/depots", "mzj_api")
    return catalog.Feed(
        "relief_depots", "mzj", "Depots", api, ("depot_id",), columns, rows_per_day=20, **facts
    )


def _windows(feed: catalog.Feed) -> dict[str, dict]:
    return {r["name"]: r["window"] for r in suites.all_rules(suites.load_suite(feed)) if "window" in r}


def test_a_feed_without_a_suite_file_gets_its_window_rules_from_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EDW_EXPECTATIONS_DIR", str(tmp_path))  # no suite files at all
    snapshot, events = _declare(snapshot=True), _declare(event_time="stocked_at")
    assert not suites.suite_path(snapshot).exists()
    assert _windows(snapshot) == {
        "updated_at_in_window": {
            "column": "updated_at",
            "days_before": REFERENCE_MAX_AGE_DAYS,
            "days_after": MAX_AHEAD_DAYS,
        }
    }
    assert _windows(events) == {
        "event_time_in_window": {
            "column": "stocked_at",
            "days_before": EVENT_MAX_AGE_DAYS,
            "days_after": MAX_AHEAD_DAYS,
        },
        "updated_at_in_window": {
            "column": "updated_at",
            "days_before": EVENT_MAX_AGE_DAYS,
            "days_after": MAX_AHEAD_DAYS,
        },
    }
    [rule] = [
        r for r in suites.window_rules(_declare(max_age_days=30)) if r["name"] == "updated_at_in_window"
    ]
    assert rule["description"].startswith("updated_at is not in the future (1 day after the batch's interval")
    assert "at most 30 days before it (records are extracted by it)" in rule["description"]

    # run for a batch, the window is the batch's day widened by the feed's days
    start, end = day_interval(dt.date(2026, 11, 1))
    [resolved] = [
        r for r in resolve_rules(None, snapshot, "b", None, (start, end)) if r["name"] == rule["name"]
    ]
    assert resolved["kwargs"] == {
        "column": "updated_at",
        "min_value": start - dt.timedelta(days=REFERENCE_MAX_AGE_DAYS),
        "max_value": end + dt.timedelta(days=MAX_AHEAD_DAYS),
    }


def test_a_hand_written_window_rule_replaces_the_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A reviewed exception: a feed's suite file may narrow (or widen) a window the catalog gives."""
    monkeypatch.setenv("EDW_EXPECTATIONS_DIR", str(tmp_path))
    feed = _declare(snapshot=True)
    [generated] = suites.window_rules(feed)
    narrower = {**generated, "window": {**generated["window"], "days_before": 365}, "description": "a year"}
    suites.suite_path(feed).write_text(json.dumps({"feed": feed.name, "rules": [narrower]}), encoding="utf-8")
    assert [r for r in suites.all_rules(suites.load_suite(feed)) if r["name"] == generated["name"]] == [
        narrower
    ]
