"""The simulated electricity load is not kind to the power rules: operating profiles with sharp shift
steps, weekends, China's holidays and the Spring Festival; near misses and data problems beside the
anomalies, each in its own truth file, never on top of one another."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emergency_dw.simulator.calendar import day_kind, holiday_calendar
from emergency_dw.simulator.generators.base import GENERATORS, DayOutput, SimContext
from emergency_dw.simulator.power_day import DATA_QUALITY_KINDS, NEAR_MISS_COLUMNS
from emergency_dw.simulator.power_quality import replacements
from emergency_dw.simulator.run import ANOMALY_COLUMNS, Simulator, truth_dir
from emergency_dw.simulator.scenario import load_scenario
from emergency_dw.simulator.world import World

SCALE = 0.01  # 144 metered enterprises
WEEK = [dt.date(2026, 11, 23) + dt.timedelta(days=k) for k in range(7)]  # Monday to Sunday
DAY = dt.date(2026, 11, 27)
LOCAL = "Asia/Shanghai"
POWER_FEEDS = ["power_load_readings", "cable_temperature_readings"]


@pytest.fixture(scope="module")
def ctx() -> SimContext:
    sc = load_scenario()
    return SimContext(sc.seed, SCALE, sc, World(sc.seed, SCALE, sc))


@pytest.fixture(scope="module")
def days(ctx: SimContext) -> dict[dt.date, DayOutput]:
    wanted = [*WEEK, dt.date(2026, 1, 14), dt.date(2026, 2, 14), dt.date(2026, 2, 17)]
    return {day: GENERATORS["power_load_readings"](ctx, day) for day in wanted}


def _items(out: DayOutput) -> pd.DataFrame:
    """Every anomaly, near miss and data problem of a day's output, as (enterprise, subject, start, end)."""
    frames = [pd.DataFrame(out.anomalies), pd.DataFrame(out.near_misses), pd.DataFrame(out.data_quality)]
    columns = ["enterprise_id", "subject_id", "started_at", "ended_at"]
    return pd.concat([f[columns] for f in frames if len(f)], ignore_index=True)


def _daily_means(ctx: SimContext, days: dict, pattern: str) -> pd.DataFrame:
    """Mean load of each enterprise of ``pattern`` on each day, leaving out those with an item that day."""
    profiles = ctx.world.operating_profiles
    wanted = set(profiles.loc[profiles["pattern"] == pattern, "enterprise_id"])
    means = {}
    for day, out in days.items():
        frame = out.frame[out.frame["enterprise_id"].isin(wanted - set(_items(out)["enterprise_id"]))]
        means[day] = frame.groupby("enterprise_id")["load_kw"].mean()
    return pd.DataFrame(means)


def test_calendar_kinds_follow_the_seed_and_the_weekdays():
    assert day_kind(dt.date(2026, 2, 17)) == "holiday"  # Spring Festival
    assert day_kind(dt.date(2026, 2, 14)) == "working_day"  # a Saturday worked instead (调休)
    assert day_kind(dt.date(2025, 10, 11)) == "working_day"
    assert day_kind(dt.date(2026, 11, 28)) == "saturday"
    assert day_kind(dt.date(2026, 11, 29)) == "sunday"
    assert day_kind(dt.date(2026, 11, 27)) == "working_day"
    assert day_kind(dt.date(2024, 6, 1)) == "saturday"  # outside the seed: the weekday rule
    assert holiday_calendar().spring_festival(2026) == (dt.date(2026, 2, 15), dt.date(2026, 2, 23))


def test_five_day_plants_rest_at_weekends_and_continuous_plants_do_not(ctx: SimContext, days: dict):
    five = _daily_means(ctx, {d: days[d] for d in WEEK}, "five_day").dropna()
    ratio = five[WEEK[6]] / five[WEEK[:5]].mean(axis=1)
    assert len(ratio) >= 20
    assert 0.22 <= ratio.median() <= 0.45
    assert ratio.between(0.18, 0.5).mean() >= 0.9
    continuous = _daily_means(ctx, {d: days[d] for d in WEEK}, "continuous").dropna()
    flat = continuous.div(continuous.mean(axis=1), axis=0)
    assert len(flat) >= 10 and flat.min().min() > 0.85 and flat.max().max() < 1.15


def test_shift_starts_are_sharp_steps_at_a_time_that_moves(ctx: SimContext, days: dict):
    profiles = ctx.world.operating_profiles
    five = set(profiles.loc[profiles["pattern"] == "five_day", "enterprise_id"])
    starts = {}
    big_steps = 0
    for day in WEEK[:5]:
        frame = days[day].frame
        frame = frame[frame["enterprise_id"].isin(five)].sort_values(["meter_id", "reading_at"])
        step = frame["load_kw"] / frame.groupby("meter_id")["load_kw"].shift()
        local = frame["reading_at"].dt.tz_convert(LOCAL)
        morning = (local.dt.hour >= 6) & (local.dt.hour < 10)
        big_steps += int(((step >= 5) & morning).sum())
        steepest = frame.assign(step=step.where(morning)).dropna(subset=["step"])
        first = steepest.loc[steepest.groupby("meter_id")["step"].idxmax()]
        starts[day] = first.set_index("meter_id")["reading_at"].dt.tz_convert(LOCAL).dt.time
    assert big_steps >= 10, "some meters step 5x or more within one interval when their shift starts"
    table = pd.DataFrame(starts).dropna()
    assert (table.nunique(axis=1) > 1).mean() > 0.5, "a plant's start time moves from day to day"


def test_spring_festival_rests_and_the_adjusted_saturday_is_worked(ctx: SimContext, days: dict):
    wanted = {d: days[d] for d in (dt.date(2026, 1, 14), dt.date(2026, 2, 14), dt.date(2026, 2, 17))}
    five = _daily_means(ctx, wanted, "five_day").dropna()
    normal = five[dt.date(2026, 1, 14)]
    holiday = five[dt.date(2026, 2, 17)] / normal
    adjusted = five[dt.date(2026, 2, 14)] / normal
    assert holiday.median() < 0.5, "five-day plants rest over the Spring Festival"
    assert adjusted.median() > 0.8, "the adjusted working Saturday before it is worked"


def test_offline_readings_read_zero_and_outages_are_recorded(days: dict):
    found = 0
    for out in days.values():
        quality = pd.DataFrame(out.data_quality)
        offline = quality[quality["kind"] == "meter_offline"]
        assert len(offline) >= 1, "at least one meter offline a day at small scales"
        frame = out.frame
        for r in offline.itertuples():
            rows = frame[
                (frame["meter_id"] == r.subject_id)
                & (frame["reading_at"] >= r.started_at)
                & (frame["reading_at"] <= r.ended_at)
            ]
            if "no rows delivered" in r.detail:
                assert rows.empty
            else:
                found += 1
                assert (rows[["load_kw", "voltage_v", "current_a"]] == 0).all().all()
                assert len(rows) == (r.ended_at - r.started_at) / pd.Timedelta(minutes=15) + 1
    assert found, "some outages deliver readings of 0 kW and 0 V"


def test_a_replaced_meter_changes_its_id_in_the_middle_of_the_month(ctx: SimContext):
    month = [r for r in replacements(ctx, dt.date(2026, 11, 30)) if r.day.month == 11 and r.day.year == 2026]
    assert len(month) == 1
    r = month[0]
    assert 13 <= r.day.day <= 17
    enterprise = ctx.world.metered["enterprise_id"].iat[r.meter]
    before, on, after = (
        GENERATORS["power_load_readings"](ctx, r.day + dt.timedelta(days=k)).frame for k in (-1, 0, 1)
    )
    assert set(before.loc[before["enterprise_id"] == enterprise, "meter_id"]) == {r.old_id}
    assert set(after.loc[after["enterprise_id"] == enterprise, "meter_id"]) == {r.new_id}
    today = on[on["enterprise_id"] == enterprise].sort_values("reading_at")
    assert list(dict.fromkeys(today["meter_id"])) == [r.old_id, r.new_id]
    assert len(today) == 96 - r.gap


def test_truth_files_have_their_columns_and_never_overlap_on_a_meter(tmp_path: Path):
    Simulator(tmp_path, scale=SCALE).simulate_day(DAY, feeds=POWER_FEEDS)
    folder = truth_dir(tmp_path, DAY)
    anomalies = pd.read_parquet(folder / "anomalies.parquet")
    near = pd.read_parquet(folder / "near_misses.parquet")
    quality = pd.read_parquet(folder / "data_quality.parquet")
    assert list(anomalies.columns) == ANOMALY_COLUMNS
    assert list(near.columns) == NEAR_MISS_COLUMNS == list(quality.columns)
    assert set(quality["kind"]) <= set(DATA_QUALITY_KINDS)
    assert {"meter_offline", "missing_readings", "no_contracted_capacity"} <= set(quality["kind"])
    assert {"near_capacity", "one_interval_spike", "small_change", "warm_cable"} <= set(near["kind"])
    items = pd.concat(
        [anomalies.assign(kind=anomalies["rule"]), near, quality], ignore_index=True
    ).sort_values(["subject_id", "started_at"])
    for subject, rows in items.groupby("subject_id"):
        assert (rows["started_at"].iloc[1:].to_numpy() > rows["ended_at"].iloc[:-1].to_numpy()).all(), (
            subject,
            rows[["kind", "started_at", "ended_at"]],
        )
    loads = items[items["subject_id"].str.startswith("M") & ~items["kind"].eq("missing_readings")]
    assert loads["subject_id"].is_unique, "one anomaly, near miss or outage per meter and day"


def test_near_misses_stay_below_the_rules_thresholds(ctx: SimContext, days: dict):
    capacity = ctx.world.metered.set_index("meter_id")["capacity_kw"]
    for out in days.values():
        frame = out.frame.set_index(["meter_id", "reading_at"])["load_kw"]
        for r in pd.DataFrame(out.near_misses).itertuples():
            values = frame.loc[r.subject_id].loc[r.started_at : r.ended_at]
            if r.kind == "near_capacity":
                share = values / capacity.get(r.subject_id, np.nan)
                assert share.between(0.799, 0.871).all() and len(values) >= 3, r
            elif r.kind == "one_interval_spike":
                assert r.started_at == r.ended_at and len(values) == 1, r


def test_the_same_day_gives_identical_files(tmp_path: Path):
    digests = []
    for name in ("a", "b"):
        Simulator(tmp_path / name, scale=0.005).simulate_day(DAY, feeds=POWER_FEEDS)
        folder = tmp_path / name
        digests.append(
            {
                str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
        )
    assert digests[0] == digests[1]
    assert any("near_misses" in k for k in digests[0]) and any("data_quality" in k for k in digests[0])
