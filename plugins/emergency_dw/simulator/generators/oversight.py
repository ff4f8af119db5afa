"""Oversight: safety-evaluation agencies, evaluators, projects and on-site check-ins; guardian codes,
their scans and the grid tasks that close the hazard loop (each task carrying the key of the power
warning, inspection hazard or hazard-reporting scan that raised it).

Projects and grid tasks live longer than a day. Each is planned whole on the day it starts (contract,
creation) from that day's random stream alone, so any later day can regenerate the earlier days' plans
and deliver again the records whose state changed that day, with only the steps that have happened by
the end of the day filled in, the way a source system's ``updated_since`` pull would return them.
Check-ins carry injected misconduct (remote evaluation, lent certificate, overlapping sites) written to
the ground truth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from ...catalog import get_feed
from ..common import (
    DAY_S,
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON,
    at,
    clamp_to_day,
    day_start_utc,
    diurnal_seconds,
    km_between,
    offset_points,
    phones,
    scaled,
    serial_ids,
)
from ..world import TOWN_CODES, TOWN_WEIGHTS
from .base import DayOutput, SimContext, conform, generator
from .enterprise import _hazards_found
from .power_warnings import power_warnings

HOUR = 3600.0


def _snapshot(ctx: SimContext, day: dt.date, feed_name: str, frame: pd.DataFrame) -> DayOutput:
    frame = frame.copy()
    frame["updated_at"] = ctx.world.touch_times(feed_name, len(frame), day)
    return DayOutput(conform(get_feed(feed_name), frame))


def _weekday_factor(day: dt.date, weekend: float) -> float:
    """A factor that is ``weekend`` on Saturdays and Sundays and keeps the weekly mean at 1."""
    return weekend if day.weekday() >= 5 else (7 - 2 * weekend) / 5


@generator("evaluation_agencies")
def evaluation_agencies(ctx: SimContext, day: dt.date) -> DayOutput:
    return _snapshot(ctx, day, "evaluation_agencies", ctx.world.agencies)


@generator("evaluators")
def evaluators(ctx: SimContext, day: dt.date) -> DayOutput:
    return _snapshot(ctx, day, "evaluators", ctx.world.evaluators)


@generator("guardian_codes")
def guardian_codes(ctx: SimContext, day: dt.date) -> DayOutput:
    return _snapshot(ctx, day, "guardian_codes", ctx.world.guardian_codes)


# ---------------------------------------------------------------------------------------------- projects
VISIT_DAYS = (5, 12)  # site visit this many days after the contract
REPORT_DAYS = (1, 4)  # report submitted this many days after the visit
FILE_DAYS = (1, 3)  # report filed with the bureau this many days after submission
PROJECT_SPAN_DAYS = VISIT_DAYS[1] + REPORT_DAYS[1] + FILE_DAYS[1]
PROJECT_TYPES = np.array(["current_status", "acceptance", "pre_assessment", "special"])


def _project_plans(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """Projects contracted on ``day`` with their whole planned life, in seconds after ``day``'s midnight."""
    rng = ctx.rng("evaluation_projects", day, "contracts")
    agencies = ctx.world.agencies
    staff = ctx.world.evaluators
    metered = ctx.world.metered
    expected = scaled(get_feed("evaluation_projects").rows_per_day, ctx.scale) * _weekday_factor(day, 0.4)
    n = max(1, int(rng.poisson(expected)))
    grade_weight = np.where(agencies["licence_grade"].to_numpy() == "A", 2.0, 1.0)
    agency_idx = rng.choice(len(agencies), n, p=grade_weight / grade_weight.sum())
    agency = agencies["agency_id"].to_numpy()[agency_idx]
    ent = rng.integers(0, len(metered), n)
    sites = metered.iloc[ent]
    seniority = staff["certificate_level"].map({"senior": 3.0, "intermediate": 2.0, "junior": 0.5}).to_numpy()
    evaluator_agency = staff["agency_id"].to_numpy()
    evaluator_ids = staff["evaluator_id"].to_numpy()
    lead = np.empty(n, dtype=object)
    for k in range(n):
        own = np.flatnonzero(evaluator_agency == agency[k])
        pool = own if len(own) else np.arange(len(staff))  # an agency without evaluators: anyone
        lead[k] = evaluator_ids[rng.choice(pool, p=seniority[pool] / seniority[pool].sum())]
    contracted = np.sort(rng.uniform(8.5 * HOUR, 17.5 * HOUR, n))
    visit = rng.integers(VISIT_DAYS[0], VISIT_DAYS[1] + 1, n) * DAY_S + rng.uniform(8.5 * HOUR, 15 * HOUR, n)
    visit_day = np.floor(visit / DAY_S)
    report_day = visit_day + rng.integers(REPORT_DAYS[0], REPORT_DAYS[1] + 1, n)
    report = report_day * DAY_S + rng.uniform(9 * HOUR, 18 * HOUR, n)
    filed = (report_day + rng.integers(FILE_DAYS[0], FILE_DAYS[1] + 1, n)) * DAY_S + rng.uniform(
        9 * HOUR, 17 * HOUR, n
    )
    return pd.DataFrame(
        {
            "project_id": serial_ids(f"EP{day:%Y%m%d}", range(1, n + 1), 3),
            "agency_id": agency,
            "enterprise_id": sites["enterprise_id"].to_numpy(),
            "lead_evaluator_id": lead,
            "project_type": rng.choice(PROJECT_TYPES, n, p=[0.45, 0.2, 0.2, 0.15]),
            "site_lat": sites["lat"].to_numpy(),
            "site_lon": sites["lon"].to_numpy(),
            "contracted_s": contracted,
            "saved_s": contracted + rng.uniform(60, 1800, n),  # the clerk enters the contract
            "visit_s": visit,
            "report_s": report,
            "filed_s": filed,
        }
    )


def _plans_seen_from(
    ctx: SimContext, plan: Callable[[SimContext, dt.date], pd.DataFrame], day: dt.date, backs: range
) -> pd.DataFrame:
    """The plans made ``backs`` days before ``day``, their ``*_s`` times made relative to ``day``'s midnight."""
    parts = []
    for back in backs:
        part = plan(ctx, day - dt.timedelta(days=back))
        seconds = [c for c in part.columns if c.endswith("_s")]
        part[seconds] -= back * DAY_S
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _changed_today(plans: pd.DataFrame, steps: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The plans with a step during the day (times relative to its midnight); which steps are done by its end."""
    events = plans[steps].to_numpy(dtype=float)
    done = events < DAY_S  # NaN (a step that never happens) compares False
    last = np.where(done, events, -np.inf).max(axis=1)
    today = last >= 0
    return plans[today].reset_index(drop=True), done[today], last[today]


def _projects_changed_on(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """Every project whose record changed on ``day``: new contracts and earlier ones moving a stage."""
    plans = _plans_seen_from(ctx, _project_plans, day, range(0, PROJECT_SPAN_DAYS + 1))
    plans, done, last = _changed_today(plans, ["saved_s", "visit_s", "report_s", "filed_s"])
    return plans.assign(
        contracted_at=at(day, plans["contracted_s"].to_numpy()),
        site_visit_at=at(day, np.where(done[:, 1], plans["visit_s"].to_numpy(), np.nan)),
        report_submitted_at=at(day, np.where(done[:, 2], plans["report_s"].to_numpy(), np.nan)),
        stage=np.select(
            [done[:, 3], done[:, 2], done[:, 1]], ["filed", "reporting", "site_visit"], "contracted"
        ),
        updated_at=clamp_to_day(at(day, last), day),
    )


@generator("evaluation_projects")
def evaluation_projects(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("evaluation_projects")
    frame = _projects_changed_on(ctx, day).sort_values("project_id", kind="stable")
    return DayOutput(conform(feed, frame))


# ---------------------------------------------------------------------------------------------- check-ins
REMOTE_RATE = 0.025
LENT_RATE = 0.02
OVERLAP_RATE = 0.01
REMOTE_THRESHOLD_KM = 1.0
LENT_THRESHOLD = 0.7
OVERLAP_THRESHOLD_KM = 5.0
BUSY_S = 3 * HOUR  # an evaluator spends at least this long on a site visit


def _visits_on(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """Projects whose site visit is on ``day`` (``visit_s``: seconds after ``day``'s midnight)."""
    plans = _plans_seen_from(ctx, _project_plans, day, range(VISIT_DAYS[0], VISIT_DAYS[1] + 1))
    visit = plans["visit_s"].to_numpy()
    today = plans[(visit >= 0) & (visit < DAY_S)]
    return today.sort_values(["visit_s", "project_id"], kind="stable", ignore_index=True)


def _devices(ctx: SimContext) -> dict[str, str]:
    evaluators = ctx.world.evaluators
    rng = ctx.rng("site_checkins", None, "devices")
    codes = rng.integers(0, 16**10, len(evaluators))
    return dict(zip(evaluators["evaluator_id"], [f"AND-{c:010X}" for c in codes], strict=True))


@generator("site_checkins")
def site_checkins(ctx: SimContext, day: dt.date) -> DayOutput:
    """Each site visit's team (the lead and up to two colleagues) checks in with GPS and a face match."""
    feed = get_feed("site_checkins")
    visits = _visits_on(ctx, day)
    devices = _devices(ctx)
    rng = ctx.rng(feed.name, day, "teams")
    by_agency = ctx.world.evaluators.groupby("agency_id")["evaluator_id"].apply(list).to_dict()
    busy_until: dict[str, float] = {}
    rows: list[dict] = []
    for visit in visits.itertuples():
        members = []
        start = visit.visit_s
        if busy_until.get(visit.lead_evaluator_id, -np.inf) <= start:
            members.append(visit.lead_evaluator_id)
        colleagues = [e for e in by_agency.get(visit.agency_id, []) if e != visit.lead_evaluator_id]
        colleagues = [e for e in colleagues if busy_until.get(e, -np.inf) <= start]
        if colleagues:
            size = min(len(colleagues), 2 if rng.random() < 0.8 else 1)
            members += list(rng.choice(colleagues, size, replace=False))
        for ev in members:
            when = start + float(np.clip(rng.normal(0, 300), -900, 1200))
            busy_until[ev] = when + BUSY_S
            rows.append(
                {
                    "project_id": visit.project_id,
                    "enterprise_id": visit.enterprise_id,
                    "evaluator_id": ev,
                    "site_lat": visit.site_lat,
                    "site_lon": visit.site_lon,
                    "seconds": max(0.0, when),
                }
            )
    if not rows:  # no site visit today (common at small scales)
        dtypes = {"timestamp": "datetime64[us, UTC]", "float": "float64", "string": "str"}
        frame = pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.type]) for c in feed.columns})
        return DayOutput(conform(feed, frame), [], np.zeros(0, dtype=bool))
    plan = pd.DataFrame(rows)
    n = len(plan)
    gps = ctx.rng(feed.name, day, "gps")
    site_lat, site_lon = plan["site_lat"].to_numpy(), plan["site_lon"].to_numpy()
    lat, lon = offset_points(gps, site_lat, site_lon, np.clip(np.abs(gps.normal(0, 0.06, n)), 0, 0.18))
    score = np.round(np.clip(gps.normal(0.93, 0.03, n), 0.85, 0.99), 3)
    device = np.array([devices[e] for e in plan["evaluator_id"]], dtype=object)
    device[gps.random(n) < 0.02] = None  # checked in through the web page

    # Misconduct: checking in from elsewhere, or someone else checking in with the evaluator's account.
    fraud = ctx.rng(feed.name, day, "misconduct")
    u = fraud.random(n)
    remote = u < REMOTE_RATE
    lent = (u >= REMOTE_RATE) & (u < REMOTE_RATE + LENT_RATE)
    away = fraud.uniform(5, 40, n)
    r_lat, r_lon = offset_points(fraud, site_lat, site_lon, away)
    lat, lon = np.where(remote, r_lat, lat), np.where(remote, r_lon, lon)
    lent_score = np.round(fraud.uniform(0.2, 0.6, n), 3)
    score = np.where(lent, lent_score, score)
    stranger = np.array([f"AND-{c:010X}" for c in fraud.integers(0, 16**10, n)], dtype=object)
    device = np.where(lent, stranger, device)
    seconds = plan["seconds"].to_numpy()
    kinds = np.where(remote, "remote_evaluation", np.where(lent, "lent_certificate", "")).astype(object)
    peaks = np.where(remote, km_between(lat, lon, site_lat, site_lon), score)

    # Overlapping sites: an evaluator signs in at one site and, within the hour, at another far away.
    overlaps = int(fraud.binomial(n, OVERLAP_RATE))
    extra = []
    if overlaps:
        sites = plan.drop_duplicates("project_id")
        far = km_between(
            sites["site_lat"].to_numpy()[:, None],
            sites["site_lon"].to_numpy()[:, None],
            sites["site_lat"].to_numpy()[None, :],
            sites["site_lon"].to_numpy()[None, :],
        )
        pairs = np.argwhere(far >= 8.0)
        for a, b in pairs[fraud.permutation(len(pairs))][:overlaps]:
            pa, pb = sites["project_id"].iat[a], sites["project_id"].iat[b]
            cand = np.flatnonzero((plan["project_id"].to_numpy() == pa) & (kinds == ""))
            team_b = set(plan.loc[plan["project_id"] == pb, "evaluator_id"])
            cand = [k for k in cand if plan["evaluator_id"].iat[k] not in team_b]
            if not cand:
                continue
            k = int(fraud.choice(cand))
            kinds[k] = "anchor"
            when = min(seconds[k] + fraud.uniform(20 * 60, 55 * 60), DAY_S - 1)
            b_lat, b_lon = offset_points(
                fraud, sites["site_lat"].to_numpy()[[b]], sites["site_lon"].to_numpy()[[b]], np.array([0.05])
            )
            extra.append((k, pb, sites["enterprise_id"].iat[b], when, b_lat[0], b_lon[0]))
    for k, pb, ent_b, when, b_lat, b_lon in extra:
        ev = plan["evaluator_id"].iat[k]
        plan.loc[len(plan)] = {
            "project_id": pb,
            "enterprise_id": ent_b,
            "evaluator_id": ev,
            "site_lat": b_lat,
            "site_lon": b_lon,
            "seconds": when,
        }
        lat, lon = np.append(lat, b_lat), np.append(lon, b_lon)
        score = np.append(score, np.round(fraud.uniform(0.88, 0.98), 3))
        device = np.append(device, devices[ev])
        seconds = np.append(seconds, when)
        kinds = np.append(kinds, "overlapping_sites")
        peaks = np.append(peaks, km_between(lat[k], lon[k], b_lat, b_lon))

    order = np.argsort(seconds, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    ids = np.array(serial_ids(f"CK{day:%Y%m%d}", rank + 1, 4), dtype=object)
    checked = at(day, seconds)
    upload = at(day, seconds + ctx.rng(feed.name, day, "upload").uniform(1, 90, len(seconds)))
    frame = pd.DataFrame(
        {
            "checkin_id": ids,
            "project_id": plan["project_id"].to_numpy(),
            "evaluator_id": plan["evaluator_id"].to_numpy(),
            "checked_in_at": checked,
            "lat": np.round(lat, 6),
            "lon": np.round(lon, 6),
            "face_match_score": score.astype(float),
            "device_id": device,
            "updated_at": clamp_to_day(upload, day),
        }
    )
    thresholds = {
        "remote_evaluation": REMOTE_THRESHOLD_KM,
        "lent_certificate": LENT_THRESHOLD,
        "overlapping_sites": OVERLAP_THRESHOLD_KM,
    }
    units = {"remote_evaluation": "km", "lent_certificate": "score", "overlapping_sites": "km"}
    anomalies = []
    protected = kinds != ""
    serials = dict.fromkeys(thresholds, 0)
    for k in order:
        rule = kinds[k]
        if rule not in thresholds:
            continue
        serials[rule] += 1
        anomalies.append(
            {
                "anomaly_id": f"{day:%Y%m%d}-{rule}-{serials[rule] - 1:03d}",
                "rule": rule,
                "feed": feed.name,
                "enterprise_id": plan["enterprise_id"].iat[k],
                "subject_id": ids[k],
                "started_at": checked[k],
                "ended_at": checked[k],
                "intervals": 1,
                "peak_value": round(float(peaks[k]), 3),
                "threshold": thresholds[rule],
                "unit": units[rule],
            }
        )
    frame = frame.iloc[order]
    return DayOutput(conform(feed, frame), anomalies, protected[order])


# ---------------------------------------------------------------------------------------------- scans
SITE_ACTIVITY = {
    "enterprise": 1.0,
    "old_house": 1.0,
    "geohazard_point": 3.0,
    "reservoir": 3.0,
    "construction_site": 1.5,
    "school": 1.5,
    "other": 0.5,
}


def _scan_draws(
    ctx: SimContext, day: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Time, code (index into the world's codes) and type of the day's scans, and the stream to go on with."""
    feed = get_feed("guardian_code_scans")
    site_type = ctx.world.guardian_codes["site_type"].astype("category")
    weight = np.array([SITE_ACTIVITY[c] for c in site_type.cat.categories])[site_type.cat.codes.to_numpy()]
    activity = ctx.rng(feed.name, None, "activity").lognormal(0.0, 0.8, len(weight)) * weight
    rng = ctx.rng(feed.name, day, "scans")
    n = max(1, int(rng.poisson(scaled(feed.rows_per_day, ctx.scale) * _weekday_factor(day, 0.7))))
    seconds = diurnal_seconds(rng, n, (9.5, 15.0))
    code = rng.choice(len(weight), n, p=activity / activity.sum())
    scan_type = rng.choice(np.array(["patrol", "check_in", "report_hazard"]), n, p=[0.87, 0.10, 0.03])
    if not (scan_type == "report_hazard").any():  # small scales: still a hazard report a day for the loop
        scan_type[rng.integers(0, n)] = "report_hazard"
    return seconds, code, scan_type, rng


def _scan_ids(day: dt.date, rows: np.ndarray) -> list[str]:
    return serial_ids(f"S{day:%Y%m%d}", np.asarray(rows) + 1, 6)


@generator("guardian_code_scans")
def guardian_code_scans(ctx: SimContext, day: dt.date) -> DayOutput:
    """Patrols scan the codes of their sites, mostly by day; a few scans report a hazard."""
    feed = get_feed("guardian_code_scans")
    seconds, code, scan_type, rng = _scan_draws(ctx, day)
    n = len(seconds)
    codes = ctx.world.guardian_codes.iloc[code]
    public = np.array(phones(rng, n), dtype=object)
    guardian = codes["guardian_phone"].to_numpy()
    reporter = np.where((scan_type != "report_hazard") & (rng.random(n) < 0.75), guardian, public)
    gps = ctx.rng(feed.name, day, "gps")
    lat = np.round(codes["lat"].to_numpy() + gps.normal(0, 0.03, n) / KM_PER_DEG_LAT, 6)
    lon = np.round(codes["lon"].to_numpy() + gps.normal(0, 0.03, n) / KM_PER_DEG_LON, 6)
    frame = pd.DataFrame(
        {
            "scan_id": _scan_ids(day, np.arange(n)),
            "code_id": codes["code_id"].to_numpy(),
            "scanned_at": at(day, seconds),
            "scan_type": scan_type,
            "reporter_phone": reporter,
            "lat": lat,
            "lon": lon,
            "updated_at": clamp_to_day(at(day, seconds + gps.uniform(0, 5, n)), day),
        }
    )
    return DayOutput(conform(feed, frame))


# ---------------------------------------------------------------------------------------------- grid tasks
# Every power warning raises a task. The others come from hazards found in inspections, hazards reported
# by guardian-code scans and the 12345 citizen hotline, in these shares of what the warnings leave of the
# feed's daily volume; each keeps the key of the record it was raised for (a citizen report's ticket is
# in no feed here).
OTHER_TASK_SOURCES = np.array(["hazard_inspection", "guardian_scan", "citizen_report"])
OTHER_TASK_SHARES = [0.4, 0.3, 0.3]
POWER_TASK_SHARE = 0.25  # of the daily volume at full scale: about a day's injected power anomalies
FALSE_ALARM_RATE = 0.10
GRID_WORKERS_PER_TOWN = 40
MAX_ASSIGN_S = 30 * 60
VERIFY_H = (1, 24)
RECTIFY_DAYS = (1, 10)
CLOSE_H = (20, 28)
FALSE_ALARM_CLOSE_H = (0.25, 4)  # a task verified as a false alarm is closed this long after
# created -> assigned -> verified -> rectified -> closed, at the latest; re-delivery looks this far back
TASK_SPAN_DAYS = (
    int(np.ceil((MAX_ASSIGN_S + VERIFY_H[1] * HOUR + RECTIFY_DAYS[1] * DAY_S + CLOSE_H[1] * HOUR) / DAY_S))
    + 1
)
TASK_COLUMNS = ["created_s", "source", "source_ref_id", "enterprise_id", "town_code"]


def power_warning_ref(enterprise_id: str, started_at: pd.Timestamp) -> str:
    """What the grid system holds of a power warning: the enterprise and the warning's start (UTC),
    ``E000123@2026-11-27T02:15:00Z``; the warehouse finds the warning (fct_power_anomalies) from them."""
    return f"{enterprise_id}@{started_at.tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ}"


def _seconds_after_midnight(day: dt.date, times: pd.Series) -> np.ndarray:
    return (pd.to_datetime(times, utc=True) - day_start_utc(day)).dt.total_seconds().to_numpy()


def _power_tasks(ctx: SimContext, day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    """One task per power warning of the day, raised within an hour or so of the warning's end."""
    warnings = power_warnings(ctx, day)
    ended = _seconds_after_midnight(day, warnings["ended_at"]) + 15 * 60  # the last interval's end
    return pd.DataFrame(
        {
            "created_s": np.minimum(ended + rng.uniform(300, 3600, len(warnings)), DAY_S - 1),
            "source": "power_warning",
            "source_ref_id": [
                power_warning_ref(e, s)
                for e, s in zip(warnings["enterprise_id"], warnings["started_at"], strict=True)
            ],
            "enterprise_id": warnings["enterprise_id"].to_numpy(),
        },
        columns=TASK_COLUMNS[:4],
    )


def _hazard_tasks(ctx: SimContext, day: dt.date, rng: np.random.Generator, wanted: int) -> pd.DataFrame:
    """Tasks for ``wanted`` of the day's inspection hazards (at least one when any was found), each carrying
    the hazard's id, raised within two hours of its finding."""
    found = _hazards_found(ctx, day)
    count = min(len(found), max(1, wanted))
    hazards = found.iloc[np.sort(rng.choice(len(found), count, replace=False))]
    return pd.DataFrame(
        {
            "created_s": np.minimum(
                _seconds_after_midnight(day, hazards["found_at"]) + rng.uniform(600, 7200, count), DAY_S - 1
            ),
            "source": "hazard_inspection",
            "source_ref_id": hazards["hazard_id"].to_numpy(),
            "enterprise_id": hazards["enterprise_id"].to_numpy(),
        },
        columns=TASK_COLUMNS[:4],
    )


def _scan_tasks(ctx: SimContext, day: dt.date, rng: np.random.Generator, wanted: int) -> pd.DataFrame:
    """Tasks for ``wanted`` of the day's hazard-reporting scans (at least one when there is one), each
    carrying the scan's id, at the scanned code's site."""
    scan_seconds, scan_code, scan_type, _ = _scan_draws(ctx, day)
    reports = np.flatnonzero(scan_type == "report_hazard")
    count = min(len(reports), max(1, wanted))
    picked = reports[np.sort(rng.choice(len(reports), count, replace=False))]
    sites = ctx.world.guardian_codes.iloc[scan_code[picked]]
    return pd.DataFrame(
        {
            "created_s": np.minimum(scan_seconds[picked] + rng.uniform(120, 1800, count), DAY_S - 1),
            "source": "guardian_scan",
            "source_ref_id": _scan_ids(day, picked),
            # the enterprise whose code was scanned; none for a code at another kind of site
            "enterprise_id": [None if pd.isna(e) else e for e in sites["site_ref_id"]],
            "town_code": sites["town_code"].to_numpy(),
        },
        columns=TASK_COLUMNS,
    )


def _citizen_tasks(ctx: SimContext, day: dt.date, rng: np.random.Generator, count: int) -> pd.DataFrame:
    """12345 hotline reports: anywhere in the county, three in ten about a metered enterprise."""
    metered = ctx.world.metered
    enterprise = metered["enterprise_id"].to_numpy()[rng.integers(0, len(metered), count)].astype(object)
    enterprise[rng.random(count) >= 0.3] = None
    return pd.DataFrame(
        {
            "created_s": diurnal_seconds(rng, count, (10.0, 15.0)),
            "source": "citizen_report",
            "source_ref_id": serial_ids(f"12345-{day:%Y%m%d}-", rng.integers(1, 10_000, count), 4),
            "enterprise_id": enterprise,
            "town_code": TOWN_CODES[rng.choice(len(TOWN_CODES), count, p=TOWN_WEIGHTS)],
        },
        columns=TASK_COLUMNS,
    )


def _tasks_raised(ctx: SimContext, day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    """The tasks raised on ``day``: what raised each, the key it carries, the enterprise and town concerned."""
    volume = scaled(get_feed("grid_tasks").rows_per_day, ctx.scale) * _weekday_factor(day, 0.6)
    wanted = dict(
        zip(
            OTHER_TASK_SOURCES,
            rng.multinomial(int(rng.poisson(volume * (1 - POWER_TASK_SHARE))), OTHER_TASK_SHARES),
            strict=True,
        )
    )
    hazard = _hazard_tasks(ctx, day, rng, int(wanted["hazard_inspection"]))
    scan = _scan_tasks(ctx, day, rng, int(wanted["guardian_scan"]))
    # a source with fewer records than tasks wanted: the rest are citizen reports
    citizen_count = int(sum(wanted.values())) - len(hazard) - len(scan)
    citizen = _citizen_tasks(ctx, day, rng, max(0, citizen_count))
    power = _power_tasks(ctx, day, rng)
    parts = [t for t in (power, hazard, scan, citizen) if len(t)]
    tasks = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    tasks = tasks.reindex(columns=TASK_COLUMNS)
    towns = ctx.world.metered.set_index("enterprise_id")["town_code"]
    known = tasks["town_code"].notna()
    tasks["town_code"] = tasks["town_code"].where(known, tasks["enterprise_id"].map(towns))
    return tasks


def _task_plans(ctx: SimContext, day: dt.date) -> pd.DataFrame:
    """Tasks created on ``day`` with their whole planned life, in seconds after ``day``'s midnight."""
    rng = ctx.rng("grid_tasks", day, "tasks")
    tasks = _tasks_raised(ctx, day, rng)
    n = len(tasks)
    created = np.floor(tasks["created_s"].to_numpy(dtype=float))
    assigned = created + np.minimum(rng.lognormal(np.log(480), 0.6, n), MAX_ASSIGN_S)
    verified = assigned + np.clip(
        rng.lognormal(np.log(4 * HOUR), 0.8, n), VERIFY_H[0] * HOUR, VERIFY_H[1] * HOUR
    )
    false_alarm = rng.random(n) < FALSE_ALARM_RATE
    rectifying = verified + rng.uniform(0.5 * HOUR, 6 * HOUR, n)
    rectified = verified + rng.uniform(RECTIFY_DAYS[0] * DAY_S, RECTIFY_DAYS[1] * DAY_S, n)
    closed = rectified + rng.uniform(CLOSE_H[0] * HOUR, CLOSE_H[1] * HOUR, n)
    # a false alarm is closed once the worker has found nothing to rectify
    closed = np.where(false_alarm, verified + rng.uniform(*FALSE_ALARM_CLOSE_H, n) * HOUR, closed)
    for late in (rectifying, rectified):
        late[false_alarm] = np.nan
    worker = rng.integers(1, GRID_WORKERS_PER_TOWN + 1, n)
    frame = tasks.assign(
        created_s=created,
        worker=[f"GW{t[-3:]}{w:03d}" for t, w in zip(tasks["town_code"], worker, strict=True)],
        assigned_s=assigned,
        verified_s=verified,
        false_alarm=false_alarm,
        rectifying_s=rectifying,
        rectified_s=rectified,
        closed_s=closed,
    ).sort_values(["created_s", "source_ref_id"], kind="stable", ignore_index=True)
    frame.insert(0, "task_id", serial_ids(f"GT{day:%Y%m%d}", range(1, n + 1), 4))
    return frame


@generator("grid_tasks")
def grid_tasks(ctx: SimContext, day: dt.date) -> DayOutput:
    """Tasks created today, and earlier tasks whose state changed today, as they stand at the day's end.
    A task verified as a false alarm is closed with the status false_alarm, never rectified."""
    feed = get_feed("grid_tasks")
    plans = _plans_seen_from(ctx, _task_plans, day, range(0, TASK_SPAN_DAYS + 1))
    steps = ["created_s", "assigned_s", "verified_s", "rectifying_s", "rectified_s", "closed_s"]
    plans, done, last = _changed_today(plans, steps)
    false_alarm = plans["false_alarm"].to_numpy(dtype=bool)
    status = np.select(
        [done[:, 5] & false_alarm, done[:, 5], done[:, 4], done[:, 3], done[:, 2], done[:, 1]],
        ["false_alarm", "closed", "rectified", "rectifying", "verified", "assigned"],
        "created",
    )
    stamps = {}
    for k, step in enumerate(("created", "assigned", "verified", None, "rectified", "closed")):
        if step is not None:
            stamps[f"{step}_at"] = at(
                day, np.where(done[:, k], plans[f"{step}_s"].to_numpy(dtype=float), np.nan)
            )
    frame = plans.assign(
        **stamps,
        grid_worker_id=np.where(done[:, 1], plans["worker"].to_numpy(), None),
        status=status,
        updated_at=clamp_to_day(at(day, last), day),
    ).sort_values("task_id", kind="stable")
    return DayOutput(conform(feed, frame))
