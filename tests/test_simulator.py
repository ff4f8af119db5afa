"""The simulator's output: files where each source would hold them, determinism, and complete truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emergency_dw import catalog
from emergency_dw.simulator.run import Simulator, truth_dir
from emergency_dw.simulator.writers import drop_dir

from conftest import DAY, SCALE
from sources import delivered, violations


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_feed_is_delivered_through_its_connector(simulated: Path):
    manifest = json.loads((truth_dir(simulated, DAY) / "manifest.json").read_text())
    assert set(manifest["feeds"]) == {f.name for f in catalog.FEEDS}
    for feed in catalog.FEEDS:
        frame = delivered(simulated, feed, DAY)
        assert len(frame) == manifest["feeds"][feed.name]["rows"], feed.name
        assert set(feed.column_names) <= set(frame.columns), feed.name
    power = manifest["feeds"]["power_load_readings"]["rows"]
    assert abs(power - round(14_355 * SCALE) * 96) < 0.01 * power


def test_same_seed_and_date_give_byte_identical_output(tmp_path: Path):
    feeds = [
        "power_load_readings",
        "cable_temperature_readings",
        "boiler_inventory",
        "old_houses",
        "alerts_110",
        "dispatch_records",
    ]
    for name in ("a", "b"):
        Simulator(tmp_path / name, scale=0.01).simulate_day(DAY, feeds=feeds)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first == second
    assert any(k.endswith(".xlsx") for k in first) and any(k.endswith(".sqlite") for k in first)
    Simulator(tmp_path / "c", scale=0.01, seed=7).simulate_day(DAY, feeds=feeds)
    other = _digests(tmp_path / "c")
    changed = [k for k in first if k.endswith(".parquet") and "truth" not in k and other.get(k) != first[k]]
    assert changed, "another seed must give other data"


def test_ground_truth_lists_every_defect_and_no_clean_row(simulated: Path):
    truth = pd.read_parquet(truth_dir(simulated, DAY) / "defects.parquet")
    assert set(truth["defect"]) >= {
        "null_required",
        "duplicate_key",
        "out_of_range",
        "unknown_code",
        "reversed_timestamps",
        "late_arriving",
    }
    for feed in catalog.FEEDS:
        frame = delivered(simulated, feed, DAY)
        rows = truth[(truth["feed"] == feed.name) & (truth["row_number"] >= 0)]
        listed = {
            (int(r), d)
            for r, d in zip(rows["row_number"], rows["defect"], strict=True)
            if d != "late_arriving"
        }
        assert violations(feed, frame) == listed, feed.name
        keys = frame[list(feed.primary_key)].astype(str).agg("|".join, axis=1)
        for row in rows.itertuples():
            assert keys.iat[row.row_number] == row.record_key, (feed.name, row)


def test_late_rows_belong_to_the_previous_day(simulated: Path):
    truth = pd.read_parquet(truth_dir(simulated, DAY) / "defects.parquet")
    late = truth[truth["defect"] == "late_arriving"]
    assert len(late) > 0
    start = pd.Timestamp(dt.datetime.combine(DAY, dt.time()), tz="Asia/Shanghai")
    for name, rows in late.groupby("feed"):
        feed = catalog.get_feed(name)
        frame = delivered(simulated, feed, DAY)
        event = pd.to_datetime(frame[feed.event_time].iloc[rows["row_number"]], utc=True)
        assert (event < start).all() and (event >= start - pd.Timedelta(days=1)).all(), name
        updated = pd.to_datetime(frame["updated_at"].iloc[rows["row_number"]], utc=True)
        assert (updated >= start).all(), name


def test_a_renamed_column_is_delivered_and_recorded(tmp_path: Path):
    day = dt.date(2026, 11, 21)  # the scenario renames a column on the 7th and the 21st
    Simulator(tmp_path, scale=0.01).simulate_day(day, feeds=["flood_prone_roads"])
    feed = catalog.get_feed("flood_prone_roads")
    header = next(drop_dir(tmp_path, feed).glob("*.csv")).read_text().splitlines()[0].split(",")
    assert "max_depth_cm" in header and "max_water_depth_cm" not in header
    truth = pd.read_parquet(truth_dir(tmp_path, day) / "defects.parquet")
    drift = truth[truth["defect"] == "renamed_column"]
    assert drift[["feed", "column"]].values.tolist() == [["flood_prone_roads", "max_water_depth_cm"]]


def test_gb18030_file_reads_correctly_only_with_its_declared_encoding(simulated: Path):
    feed = catalog.get_feed("boiler_inventory")
    path = next(drop_dir(simulated, feed).glob("*.csv"))
    assert path.name.startswith("锅炉清单_")
    raw = path.read_bytes()
    text = raw.decode("gb18030")
    assert text.splitlines()[0].split(",") == [c.header for c in feed.columns]
    assert any("有限公司" in line for line in text.splitlines()[1:])
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    garbled = raw.decode("latin-1").splitlines()[0].split(",")
    assert garbled != [c.header for c in feed.columns]


def test_xlsx_drops_have_chinese_headers_and_one_workbook_per_town(simulated: Path):
    from openpyxl import load_workbook

    feed = catalog.get_feed("town_incident_reports")
    files = sorted(drop_dir(simulated, feed).glob("*.xlsx"))
    assert files and all("_突发事件报告_" in p.name for p in files)
    towns = {t.name_zh for t in catalog.TOWNS}
    assert {p.name.split("_")[0] for p in files} <= towns
    sheet = load_workbook(files[0], read_only=True)[feed.connector.sheet]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header == [c.header for c in feed.columns] and "上报时间" in header


def test_power_readings_have_industry_shapes_and_capacity(simulated: Path):
    frame = delivered(simulated, catalog.get_feed("power_load_readings"), DAY)
    profiles = delivered(simulated, catalog.get_feed("enterprise_safety_profiles"), DAY)
    assert frame["reading_at"].dt.tz is not None
    assert frame.groupby("meter_id").size().median() == 96
    local_hour = frame["reading_at"].dt.tz_convert("Asia/Shanghai").dt.hour
    by_hour = frame.assign(h=local_hour).groupby("h")["load_kw"].sum()
    assert by_hour.loc[10] > 1.5 * by_hour.loc[3], "factories draw more by day than at night"
    capacity = profiles.drop_duplicates("enterprise_id").set_index("enterprise_id")["contracted_capacity_kw"]
    share = frame["load_kw"] / frame["enterprise_id"].map(capacity)
    assert share.median() < 0.6


def _events(times: pd.Series, flagged: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of the runs of flagged readings, one missing reading (a gap of 30
    minutes) allowed inside a run, as the rules join intervals."""
    runs, start, last, count = [], None, 0, 0
    quarter = pd.Timedelta(minutes=15)
    for i, flag in enumerate(flagged):
        if flag and start is not None and times.iat[i] - times.iat[last] <= 2 * quarter:
            last, count = i, count + 1
        elif flag:
            if start is not None:
                runs.append((start, last, count))
            start, last, count = i, i, 1
    if start is not None:
        runs.append((start, last, count))
    return [(a, b) for a, b, n in runs if n >= 2]


def test_ground_truth_lists_every_overload_surge_and_hot_cable(simulated: Path):
    """Every run of the data that meets the overload or the cable rule is an injected anomaly, and vice
    versa; every injected surge is a step of at least 2x held for two intervals. The normal load is no
    longer kind to the rules: shift starts step 2x and more within one interval (the old version of
    this test found no such step outside an anomaly)."""
    anomalies = pd.read_parquet(truth_dir(simulated, DAY) / "anomalies.parquet")
    assert set(anomalies["rule"]) == {
        "overload",
        "surge",
        "abnormal_fluctuation",
        "suspension_violation",
        "cable_over_temperature",
    }
    defects = pd.read_parquet(truth_dir(simulated, DAY) / "defects.parquet")
    power_feed = catalog.get_feed("power_load_readings")
    power = delivered(simulated, power_feed, DAY)
    bad_rows = set(defects.loc[defects["feed"] == power_feed.name, "row_number"])
    power = power.drop(index=list(bad_rows)).sort_values(["meter_id", "reading_at"])
    profiles = delivered(simulated, catalog.get_feed("enterprise_safety_profiles"), DAY).drop_duplicates(
        "enterprise_id"
    )
    capacity = profiles.set_index("enterprise_id")["contracted_capacity_kw"]
    start = pd.Timestamp(dt.datetime.combine(DAY, dt.time()), tz="Asia/Shanghai")
    power = power[power["reading_at"] >= start].assign(capacity=lambda f: f["enterprise_id"].map(capacity))

    found = set()
    for meter, rows in power[power["capacity"].notna()].groupby("meter_id"):
        load, cap = rows["load_kw"].to_numpy(), rows["capacity"].to_numpy()
        usable = (load > 0) & (load <= 2 * cap)  # not offline, not implausible (a catch-up reading)
        for a, _ in _events(rows["reading_at"], usable & (load >= 0.9 * cap)):
            found.add(("overload", meter, rows["reading_at"].iat[a]))
    listed = {
        ("overload", r.subject_id, r.started_at)
        for r in anomalies[anomalies["rule"] == "overload"].itertuples()
    }
    assert found == listed

    by_meter = {meter: rows.set_index("reading_at")["load_kw"] for meter, rows in power.groupby("meter_id")}
    quarter = pd.Timedelta(minutes=15)
    for r in anomalies[anomalies["rule"] == "surge"].itertuples():
        load = by_meter[r.subject_id]
        before = load[r.started_at - quarter]
        assert load[r.started_at] >= 2 * before and load[r.started_at + quarter] >= 2 * before, r
        assert r.threshold == pytest.approx(2 * before, abs=0.02)
    doubled = power.assign(prev=power.groupby("meter_id")["load_kw"].shift())
    doubled = doubled[(doubled["load_kw"] >= 2 * doubled["prev"]) & (doubled["prev"] > 0)]
    windows = anomalies[anomalies["feed"] == power_feed.name]
    outside = [
        row
        for row in doubled.itertuples()
        if not (
            (windows["subject_id"] == row.meter_id)
            & (windows["started_at"] <= row.reading_at)
            & (windows["ended_at"] >= row.reading_at)
        ).any()
    ]
    assert len(outside) > 10, "shift starts step 2x within one interval in normal data"

    cables = delivered(simulated, catalog.get_feed("cable_temperature_readings"), DAY)
    cable_bad = set(defects.loc[defects["feed"] == "cable_temperature_readings", "row_number"])
    cables = cables.drop(index=list(cable_bad))
    cables = cables[cables["reading_at"] >= start].sort_values(["cable_id", "reading_at"])
    hot = {
        (c, rows["reading_at"].iat[a])
        for c, rows in cables.groupby("cable_id")
        for a, _ in _events(rows["reading_at"], (rows["temperature_c"] >= 70).to_numpy())
    }
    listed_hot = {
        (r.subject_id, r.started_at)
        for r in anomalies[anomalies["rule"] == "cable_over_temperature"].itertuples()
    }
    assert hot == listed_hot
