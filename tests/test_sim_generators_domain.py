"""The response and oversight generators: catalog shape, rules, determinism and cross-feed consistency."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from emergency_dw.catalog import get_feed
from emergency_dw.simulator.common import day_start_utc, scaled
from emergency_dw.simulator.generators import oversight, response
from emergency_dw.simulator.generators.base import GENERATORS, SimContext
from emergency_dw.simulator.scenario import load_scenario
from emergency_dw.simulator.world import World

DAY = dt.date(2026, 11, 24)  # a Tuesday
SCALE = 0.05
RESPONSE_FEEDS = (
    "rescue_teams",
    "rescuers",
    "rescuer_positions",
    "alerts_110",
    "alerts_119",
    "alerts_120",
    "dispatch_records",
)
OVERSIGHT_FEEDS = (
    "evaluation_agencies",
    "evaluators",
    "evaluation_projects",
    "site_checkins",
    "guardian_codes",
    "guardian_code_scans",
    "grid_tasks",
)
FEEDS = RESPONSE_FEEDS + OVERSIGHT_FEEDS
REDELIVERING = ("evaluation_projects", "grid_tasks")  # records of earlier days come again when they change
STAGES = ("contracted", "site_visit", "reporting", "filed")


def make_ctx(scale: float = SCALE) -> SimContext:
    sc = load_scenario()
    return SimContext(sc.seed, scale, sc, World(sc.seed, scale, sc))


def local_day(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    return day_start_utc(day), day_start_utc(day + dt.timedelta(days=1))


@pytest.fixture(scope="module")
def ctx() -> SimContext:
    return make_ctx()


@pytest.fixture(scope="module")
def outputs(ctx: SimContext) -> dict:
    return {name: GENERATORS[name](ctx, DAY) for name in FEEDS}


def test_every_feed_has_its_own_generator() -> None:
    for name in RESPONSE_FEEDS:
        assert GENERATORS[name] is getattr(response, name)
    for name in OVERSIGHT_FEEDS:
        assert GENERATORS[name] is getattr(oversight, name)


@pytest.mark.parametrize("name", FEEDS)
def test_columns_and_types(outputs: dict, name: str) -> None:
    feed = get_feed(name)
    frame = outputs[name].frame
    assert list(frame.columns) == feed.column_names
    assert len(frame) > 0
    for col in feed.columns:
        values = frame[col.name]
        present = values.dropna()
        if col.type == "timestamp":
            assert str(values.dtype) == "datetime64[us, UTC]", col.name
        elif col.type == "date":
            assert all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in present), col.name
        elif col.type == "integer":
            assert pd.api.types.is_integer_dtype(values), col.name
        elif col.type == "float":
            assert pd.api.types.is_float_dtype(values), col.name
        elif col.type == "boolean":
            assert pd.api.types.is_bool_dtype(values), col.name
        else:
            assert all(isinstance(v, str) for v in present), col.name


@pytest.mark.parametrize("name", FEEDS)
def test_not_null_allowed_values_and_ranges(outputs: dict, name: str) -> None:
    feed = get_feed(name)
    frame = outputs[name].frame
    for col in feed.columns:
        values = frame[col.name]
        if not col.nullable:
            assert values.notna().all(), f"{name}.{col.name} has nulls"
        present = values.dropna()
        if col.allowed is not None:
            bad = set(present) - set(col.allowed)
            assert not bad, f"{name}.{col.name}: {sorted(bad)[:5]} not allowed"
        if col.min is not None:
            assert (present >= col.min).all(), f"{name}.{col.name} below {col.min}"
        if col.max is not None:
            assert (present <= col.max).all(), f"{name}.{col.name} above {col.max}"


@pytest.mark.parametrize("name", FEEDS)
def test_time_order_and_primary_key(outputs: dict, name: str) -> None:
    feed = get_feed(name)
    frame = outputs[name].frame
    for earlier, later in feed.time_order:
        both = frame[earlier].notna() & frame[later].notna()
        assert (frame.loc[both, later] >= frame.loc[both, earlier]).all(), f"{name}: {later} < {earlier}"
    assert not frame.duplicated(list(feed.primary_key)).any(), f"{name}: duplicate primary keys"


@pytest.mark.parametrize("name", [n for n in FEEDS if not get_feed(n).snapshot])
def test_event_records_belong_to_the_local_day(outputs: dict, name: str) -> None:
    feed = get_feed(name)
    frame = outputs[name].frame
    start, end = local_day(DAY)
    assert (frame["updated_at"] >= start).all() and (frame["updated_at"] < end).all()
    if name in REDELIVERING:
        assert (frame[feed.event_time] < end).all()
        # nothing the source cannot know yet: every filled timestamp is at or before the last change
        for col in feed.columns:
            if col.type == "timestamp" and col.name != "updated_at":
                filled = frame[col.name].notna()
                assert (frame.loc[filled, col.name] <= frame.loc[filled, "updated_at"]).all(), col.name
    else:
        assert (frame[feed.event_time] >= start).all() and (frame[feed.event_time] < end).all()


@pytest.mark.parametrize("name", [n for n in FEEDS if get_feed(n).snapshot])
def test_snapshots_are_the_whole_world_list(ctx: SimContext, outputs: dict, name: str) -> None:
    frame = outputs[name].frame
    world = {
        "rescue_teams": ctx.world.teams,
        "rescuers": ctx.world.rescuers,
        "evaluation_agencies": ctx.world.agencies,
        "evaluators": ctx.world.evaluators,
        "guardian_codes": ctx.world.guardian_codes,
    }[name]
    key = get_feed(name).primary_key[0]
    assert list(frame[key]) == list(world[key])
    assert (frame["updated_at"] < local_day(DAY)[1]).all()
    later = GENERATORS[name](ctx, DAY + dt.timedelta(days=90)).frame
    assert (later["updated_at"] >= frame["updated_at"]).all()
    assert (later["updated_at"] > frame["updated_at"]).any()


@pytest.mark.parametrize("name", FEEDS)
def test_the_same_day_comes_out_the_same(outputs: dict, name: str) -> None:
    again = GENERATORS[name](make_ctx(), DAY)
    pd.testing.assert_frame_equal(again.frame, outputs[name].frame)
    assert again.anomalies == outputs[name].anomalies


@pytest.mark.parametrize(
    "name", ["alerts_110", "alerts_119", "alerts_120", "rescuer_positions", "guardian_code_scans"]
)
def test_event_volumes_follow_the_catalog(outputs: dict, name: str) -> None:
    expected = scaled(get_feed(name).rows_per_day, SCALE)
    assert expected / 3 <= len(outputs[name].frame) <= expected * 3 + 5


def test_alert_ids_are_per_channel_and_day(outputs: dict) -> None:
    for channel in ("110", "119", "120"):
        ids = outputs[f"alerts_{channel}"].frame["incident_id"]
        assert ids.str.fullmatch(rf"{channel}-{DAY:%Y%m%d}-\d{{5}}").all()


def test_dispatch_sends_known_units_to_the_days_incidents(ctx: SimContext, outputs: dict) -> None:
    dispatch = outputs["dispatch_records"].frame
    alerts = pd.concat([outputs[f"alerts_{c}"].frame for c in ("110", "119", "120")], ignore_index=True)
    assert set(dispatch["incident_id"]) <= set(alerts["incident_id"])
    assert set(dispatch["team_id"]) <= set(ctx.world.teams["team_id"])
    assert (dispatch["unit_id"].str.split("-U").str[0] == dispatch["team_id"]).all()
    received = alerts.set_index("incident_id").loc[dispatch["incident_id"], "received_at"].to_numpy()
    assert (dispatch["dispatched_at"].to_numpy() >= received).all()
    # every 119 and 120 call gets a unit
    for channel in ("119", "120"):
        calls = set(outputs[f"alerts_{channel}"].frame["incident_id"])
        assert calls <= set(dispatch["incident_id"])


def test_rescuers_report_every_quarter_hour(ctx: SimContext, outputs: dict) -> None:
    positions = outputs["rescuer_positions"].frame
    per_rescuer = positions.groupby("rescuer_id").size()
    assert (per_rescuer == 96).all()
    assert len(per_rescuer) == scaled(600, SCALE)
    assert set(per_rescuer.index) <= set(ctx.world.rescuers["rescuer_id"])


def _distance_km(frame: pd.DataFrame, lat: pd.Series, lon: pd.Series) -> np.ndarray:
    return response.km_between(
        frame["lat"].to_numpy(), frame["lon"].to_numpy(), lat.to_numpy(), lon.to_numpy()
    )


def _checkins_with_sites(ctx: SimContext, day: dt.date) -> tuple[pd.DataFrame, list[dict], np.ndarray]:
    out = oversight.site_checkins(ctx, day)
    plans = oversight._visits_on(ctx, day).set_index("project_id")
    frame = out.frame.assign(
        site_km=lambda f: _distance_km(
            f, plans.loc[f["project_id"], "site_lat"], plans.loc[f["project_id"], "site_lon"]
        )
    )
    return frame, out.anomalies, out.protected


def test_checkins_are_for_todays_site_visits(ctx: SimContext, outputs: dict) -> None:
    checkins = outputs["site_checkins"].frame
    projects = outputs["evaluation_projects"].frame.set_index("project_id")
    assert set(checkins["project_id"]) <= set(projects.index)
    start, end = local_day(DAY)
    visits = projects.loc[checkins["project_id"], "site_visit_at"]
    assert ((visits >= start) & (visits < end)).all()


def _check_anomalies(frame: pd.DataFrame, anomalies: list[dict], protected: np.ndarray) -> None:
    assert protected is not None and len(protected) == len(frame)
    by_id = frame.set_index("checkin_id")
    flagged = set()
    for a in anomalies:
        assert a["feed"] == "site_checkins" and a["intervals"] == 1
        assert a["subject_id"] in by_id.index, a
        row = by_id.loc[a["subject_id"]]
        assert a["started_at"] == a["ended_at"] == row["checked_in_at"]
        if a["rule"] == "remote_evaluation":
            assert row["site_km"] >= 5 and a["peak_value"] > a["threshold"]
        elif a["rule"] == "lent_certificate":
            assert row["face_match_score"] <= 0.6 and a["peak_value"] < a["threshold"]
        else:
            assert a["rule"] == "overlapping_sites"
            same = frame[
                (frame["evaluator_id"] == row["evaluator_id"]) & (frame["checkin_id"] != a["subject_id"])
            ]
            gap = (row["checked_in_at"] - same["checked_in_at"]).abs()
            near = same[gap <= pd.Timedelta(hours=1)]
            km = _distance_km(
                near, pd.Series(row["lat"], index=near.index), pd.Series(row["lon"], index=near.index)
            )
            assert (km >= a["threshold"]).any()
        flagged.add(a["subject_id"])
    normal = frame[~protected]
    assert (normal["site_km"] < 0.2).all()
    assert (normal["face_match_score"] >= 0.85).all()
    # normal check-ins never put one evaluator at two sites within the hour
    for _, rows in normal.groupby("evaluator_id"):
        times = rows["checked_in_at"].sort_values()
        assert (times.diff().dropna() > pd.Timedelta(hours=1)).all()


def test_checkin_misconduct_is_recorded_as_truth(ctx: SimContext) -> None:
    rules = set()
    for k in range(40):
        day = DAY - dt.timedelta(days=k)
        frame, anomalies, protected = _checkins_with_sites(ctx, day)
        _check_anomalies(frame, anomalies, protected)
        rules |= {a["rule"] for a in anomalies}
    assert rules & {"remote_evaluation", "lent_certificate"}


def test_overlapping_sites_at_full_scale() -> None:
    full = make_ctx(1.0)
    rules: dict[str, int] = {}
    total = 0
    for k in range(10):
        frame, anomalies, protected = _checkins_with_sites(full, DAY - dt.timedelta(days=k))
        _check_anomalies(frame, anomalies, protected)
        total += len(frame)
        for a in anomalies:
            rules[a["rule"]] = rules.get(a["rule"], 0) + 1
    assert set(rules) == {"remote_evaluation", "lent_certificate", "overlapping_sites"}
    assert 0.02 <= sum(rules.values()) / total <= 0.10


def _deliveries(ctx: SimContext, name: str, days: int) -> pd.DataFrame:
    frames = []
    for k in range(days):
        day = DAY - dt.timedelta(days=days - 1 - k)
        frames.append(GENERATORS[name](ctx, day).frame.assign(delivered=day))
    return pd.concat(frames, ignore_index=True)


def test_projects_move_forward_through_their_stages(ctx: SimContext) -> None:
    seen = _deliveries(ctx, "evaluation_projects", 40)
    seen["rank"] = seen["stage"].map(STAGES.index)
    for _, rows in seen.sort_values(["project_id", "delivered"]).groupby("project_id"):
        assert rows["rank"].is_monotonic_increasing
        assert not rows["delivered"].duplicated().any()
        assert rows["contracted_at"].nunique() == 1
        assert rows["site_visit_at"].dropna().nunique() <= 1
    # projects contracted early enough went the whole way, one delivery per stage
    assert set(seen["stage"]) == set(STAGES)
    contracted_early = seen[
        (seen["stage"] == "contracted") & (seen["delivered"] <= DAY - dt.timedelta(days=21))
    ]
    filed = set(seen.loc[seen["stage"] == "filed", "project_id"])
    assert set(contracted_early["project_id"]) <= filed


def test_grid_tasks_progress_and_link_to_scans(ctx: SimContext) -> None:
    seen = _deliveries(ctx, "grid_tasks", 30)
    order = ("created", "assigned", "verified", "rectifying", "rectified", "closed")
    steps = ("created_at", "assigned_at", "verified_at", "rectified_at", "closed_at")
    for _, rows in seen.sort_values(["task_id", "delivered"]).groupby("task_id"):
        status = rows["status"].tolist()
        if "false_alarm" in status:
            assert status[-1] == "false_alarm" and rows["rectified_at"].isna().all()
            status = status[:-1]
        assert [order.index(s) for s in status] == sorted(order.index(s) for s in status)
        for step in steps:  # a step's time, once known, never changes
            assert rows[step].dropna().nunique() <= 1
    last = seen.drop_duplicates("task_id", keep="last")
    assert last["grid_worker_id"].isna().eq(last["assigned_at"].isna()).all()
    from_scans = seen[seen["source"] == "guardian_scan"].drop_duplicates("task_id")
    for created, rows in from_scans.groupby(from_scans["task_id"].str[2:10]):
        scans = oversight.guardian_code_scans(ctx, dt.datetime.strptime(created, "%Y%m%d").date()).frame
        hazard_scans = set(scans.loc[scans["scan_type"] == "report_hazard", "scan_id"])
        assert set(rows["source_ref_id"]) <= hazard_scans


def test_grid_tasks_carry_the_keys_of_the_warnings_that_raised_them(ctx: SimContext) -> None:
    """An inspection task names a hazard found that day at its enterprise, a power task the enterprise and
    start of one of the day's injected power anomalies (every one raises a task), a false alarm is closed."""
    from emergency_dw.simulator.generators.enterprise import _hazards_found
    from emergency_dw.simulator.generators.power_warnings import power_warnings

    tasks = GENERATORS["grid_tasks"](ctx, DAY).frame
    created = tasks[tasks["task_id"].str[2:10] == f"{DAY:%Y%m%d}"]
    found = _hazards_found(ctx, DAY).set_index("hazard_id")
    inspection = created[created["source"] == "hazard_inspection"]
    assert len(inspection) >= 1
    assert inspection["source_ref_id"].isin(found.index).all()
    assert (
        inspection["enterprise_id"].to_numpy() == found.loc[inspection["source_ref_id"], "enterprise_id"]
    ).all()
    warnings = power_warnings(ctx, DAY)
    assert len(warnings) >= 1
    refs = {
        oversight.power_warning_ref(e, s)
        for e, s in zip(warnings["enterprise_id"], warnings["started_at"], strict=True)
    }
    assert set(created.loc[created["source"] == "power_warning", "source_ref_id"]) == refs
    seen = _deliveries(ctx, "grid_tasks", 7)
    false_alarms = seen[seen["status"] == "false_alarm"]
    assert len(false_alarms) >= 1
    assert false_alarms["closed_at"].notna().all() and false_alarms["rectified_at"].isna().all()


def test_the_power_warnings_grid_tasks_name_are_the_injected_anomalies(ctx: SimContext) -> None:
    """power_warnings() repeats the power generators' steps without generating readings: it must give
    exactly the anomalies they write to the truth."""
    from emergency_dw.simulator.generators.power_warnings import WARNING_COLUMNS, power_warnings

    truth = pd.DataFrame(
        GENERATORS["power_load_readings"](ctx, DAY).anomalies
        + GENERATORS["cable_temperature_readings"](ctx, DAY).anomalies
    )
    truth = truth[WARNING_COLUMNS].sort_values(["started_at", "enterprise_id"], ignore_index=True)
    warnings = power_warnings(ctx, DAY).sort_values(["started_at", "enterprise_id"], ignore_index=True)
    assert len(truth) >= 1
    pd.testing.assert_frame_equal(
        warnings.astype({c: str for c in WARNING_COLUMNS}), truth.astype({c: str for c in WARNING_COLUMNS})
    )
