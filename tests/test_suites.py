"""Expectation suites: one per feed, their generated part in step with the catalog, severities valid."""

from __future__ import annotations

import json

from emergency_dw import catalog
from emergency_dw.pipeline import suites


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
