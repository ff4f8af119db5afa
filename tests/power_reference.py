"""The power rules recomputed in pandas and numpy from the staged readings, independently of the dbt models:
what the README's "The power warnings" says, step by step, for tests to compare with the warehouse.

Every step works on plain Python structures per meter (a dict of its readings by time) so that it reads
like the rule's sentence, not like the SQL: no window frames, no lists indexed from one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

LOCAL = "Asia/Shanghai"
QUARTER = pd.Timedelta(minutes=15)


def percentile_cont(values, fraction: float) -> float | None:
    """Linear interpolation between ranks (quantile_cont, percentile_cont); None for no values."""
    v = sorted(x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x)))
    if not v:
        return None
    position = (len(v) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return v[low] + (v[high] - v[low]) * (position - low)


def day_kind(day: dt.date, calendar: dict[dt.date, str]) -> str:
    if calendar.get(day) == "holiday":
        return "holiday"
    if calendar.get(day) == "working_day" or day.weekday() < 5:
        return "working_day"
    return "saturday" if day.weekday() == 5 else "sunday"


def kind_group(kind: str, pattern: str) -> str:
    if pattern == "continuous":
        return "any"
    if pattern == "six_day" and kind in ("working_day", "saturday"):
        return "working"
    return "rest" if kind in ("sunday", "holiday") else kind


@dataclass
class Settings:
    values: dict[tuple[str, str], float]

    def __call__(self, rule: str, parameter: str) -> float:
        return self.values[(rule, parameter)]


@dataclass
class MeterDay:
    loads: list  # 96, None where no usable non-catch-up reading
    steps: list
    hourly_loads: list
    hourly_highs: list
    day_high: float | None
    day_mean: float | None
    max_hour_mean: float | None
    usable: int
    kind: str
    complete: bool


@dataclass
class Context:
    level: float | None
    pattern: str
    similar_dates: list = field(default_factory=list)
    kind_days: int = 0
    lookback_highs: list = field(default_factory=lambda: [None] * 24)
    lookback_max_hour_mean: float | None = None


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


class _Frames:
    """A meter's rows between two offsets of a time (inclusive), from its sorted reading times."""

    def __init__(self, rows: dict, times: list) -> None:
        self.rows, self.times = rows, times

    def __call__(self, t, start, end) -> list[dict]:
        low = bisect.bisect_left(self.times, t + start)
        high = bisect.bisect_right(self.times, t + end)
        return [self.rows[u] for u in self.times[low:high]]


def _paired_mean(members: list[dict], min_readings: int) -> tuple[float | None, float | None]:
    """Mean load and mean usual load over the members with both, when at least min_readings have them."""
    members = [m for m in members if m["paired"]]
    if len(members) < min_readings:
        return None, None
    return (
        sum(m["relative"] for m in members) / len(members),
        sum(m["usual"] for m in members) / len(members),
    )


def compute(
    readings: pd.DataFrame,
    capacities: dict[str, float | None],
    orders: pd.DataFrame,
    cables: pd.DataFrame,
    thresholds: pd.DataFrame,
    calendar: dict[dt.date, str],
) -> dict[str, pd.DataFrame]:
    """readings: meter_id, enterprise_id, reading_at (UTC), load_kw, voltage_v; capacities by enterprise;
    orders: enterprise_id, effective_from, effective_to; cables: cable_id, enterprise_id, reading_at,
    temperature_c; thresholds: the seed anomaly_thresholds. Returns the steps as frames."""
    s = Settings({(r.rule, r.parameter): float(r.value) for r in thresholds.itertuples()})
    lookback = int(s("baseline", "lookback_days"))
    window = int(s("abnormal_fluctuation", "window_intervals"))
    tolerance = int(s("abnormal_fluctuation", "tolerance_intervals"))
    rise_reach = int(s("abnormal_fluctuation", "rise_edge_reach_intervals"))
    drop_reach = int(s("abnormal_fluctuation", "drop_edge_reach_intervals"))
    reach = max(rise_reach, drop_reach)
    step_tolerance = int(s("surge", "tolerance_intervals"))
    peak_n = int(s("abnormal_fluctuation", "peak_intervals"))

    readings = readings.sort_values(["meter_id", "reading_at"]).reset_index(drop=True)
    local = readings["reading_at"].dt.tz_convert(LOCAL)
    readings["reading_date"] = local.dt.date
    readings["slot"] = local.dt.hour * 4 + local.dt.minute // 15
    plausible = s("data_quality", "max_plausible_ratio")

    # 1. states, catch-up readings, steps
    meters: dict[str, dict] = {}
    for meter, rows in readings.groupby("meter_id", sort=True):
        by_time = {}
        previous = None
        last_read = None
        for r in rows.itertuples():
            capacity = capacities.get(r.enterprise_id)
            if r.load_kw == 0 and (r.voltage_v is None or pd.isna(r.voltage_v) or r.voltage_v == 0):
                state = "offline"
            elif capacity is not None and r.load_kw > plausible * capacity:
                state = "implausible"
            else:
                state = "usable"
            consecutive = previous is not None and previous["at"] == r.reading_at - QUARTER
            after_gap = not consecutive or previous["state"] == "offline"
            prev_load = previous["load"] if consecutive and previous["state"] == "usable" else None
            by_time[r.reading_at] = {
                "at": r.reading_at,
                "enterprise_id": r.enterprise_id,
                "date": r.reading_date,
                "slot": r.slot,
                "load": r.load_kw,
                "state": state,
                "after_gap": after_gap,
                "prev_load": prev_load,
                "step": r.load_kw - prev_load if prev_load is not None and state == "usable" else None,
                "previous_read_at": last_read,
                "capacity": capacity,
            }
            previous = by_time[r.reading_at]
            if state != "offline":
                last_read = r.reading_at
        meters[meter] = by_time

    # 2. meter days
    complete_n = int(s("baseline", "complete_day_readings"))
    days: dict[str, dict[dt.date, MeterDay]] = {}
    for meter, by_time in meters.items():
        per_day: dict[dt.date, list] = defaultdict(list)
        for row in by_time.values():
            per_day[row["date"]].append(row)
        days[meter] = {}
        for day, rows in per_day.items():
            loads, steps = [None] * 96, [None] * 96
            for row in rows:
                if row["state"] == "usable" and not row["after_gap"]:
                    loads[row["slot"]] = row["load"]
                steps[row["slot"]] = row["step"]
            hourly = []
            for h in range(24):
                values = [v for v in loads[4 * h : 4 * h + 4] if v is not None]
                hourly.append(sum(values) / len(values) if len(values) >= 2 else None)
            highs = [_max(loads[4 * h : 4 * h + 4]) for h in range(24)]
            hour_means = []
            for slot in range(96):
                values = [v for v in loads[max(0, slot - 3) : slot + 1] if v is not None]
                if len(values) >= 3:
                    hour_means.append(sum(values) / len(values))
            usable = sum(v is not None for v in loads)
            days[meter][day] = MeterDay(
                loads,
                steps,
                hourly,
                highs,
                percentile_cont(hourly, 0.9),
                _mean(loads),
                max(hour_means) if hour_means else None,
                usable,
                day_kind(day, calendar),
                usable >= complete_n,
            )

    # 3. context: level, pattern, similar days, the lookback's highs
    contexts: dict[tuple[str, dt.date], Context] = {}
    active = s("baseline", "active_ratio")
    for meter, meter_days in days.items():
        for day, today in meter_days.items():
            history = {d: md for d, md in meter_days.items() if day - dt.timedelta(days=lookback) <= d < day}
            complete = {d: md for d, md in history.items() if md.complete}
            highs = [md.day_high for md in complete.values() if md.day_high is not None]
            level = percentile_cont(highs, 0.5) if len(highs) >= s("baseline", "min_level_days") else None
            means = defaultdict(list)
            for md in complete.values():
                group = "rest" if md.kind in ("sunday", "holiday") else md.kind
                means[group].append(md.day_mean)
            working = _mean(means["working_day"])
            saturday, rest = _mean(means["saturday"]), _mean(means["rest"])
            if len(means["working_day"]) < s("baseline", "min_level_days") or not (working or 0) > 0:
                pattern = "five_day"
            elif (
                saturday is not None
                and rest is not None
                and saturday >= active * working
                and rest >= active * working
            ):
                pattern = "continuous"
            elif saturday is not None and saturday >= active * working:
                pattern = "six_day"
            else:
                pattern = "five_day"
            context = Context(level, pattern)
            context.lookback_highs = [
                _max([md.hourly_highs[h] for md in history.values()]) for h in range(24)
            ]
            context.lookback_max_hour_mean = _max([md.max_hour_mean for md in history.values()])
            if level is not None and level > 0:
                group = kind_group(today.kind, pattern)
                context.kind_days = sum(kind_group(md.kind, pattern) == group for md in complete.values())
                ranked = []
                for d, md in complete.items():
                    distances = [
                        min(abs(a - b) / level, s("baseline", "distance_cap"))
                        for a, b in zip(today.hourly_loads, md.hourly_loads, strict=True)
                        if a is not None and b is not None
                    ]
                    if len(distances) < s("baseline", "min_common_hours"):
                        continue
                    distance = sum(distances) / len(distances)
                    if kind_group(today.kind, pattern) != kind_group(md.kind, pattern):
                        distance += s("baseline", "kind_penalty")
                    # to 9 decimals, as the warehouse keeps it (so that equal days rank alike)
                    ranked.append((round(distance, 9), -d.toordinal(), d))
                ranked.sort()
                nearest = ranked[0][0] if ranked else None
                context.similar_dates = [
                    d
                    for distance, _, d in ranked[: int(s("baseline", "similar_days"))]
                    if distance <= nearest + s("baseline", "similar_margin")
                ]
            contexts[(meter, day)] = context

    # 4. usual profiles
    usual: dict[tuple[str, dt.date], tuple[list, list]] = {}
    for (meter, day), context in contexts.items():
        if len(context.similar_dates) < s("baseline", "min_similar_days"):
            continue
        similar = [days[meter][d] for d in context.similar_dates]
        usual[(meter, day)] = (
            [percentile_cont([md.loads[k] for md in similar], 0.5) for k in range(96)],
            [_max([md.steps[k] for md in similar]) for k in range(96)],
        )

    # 5. scores
    orders_by_enterprise = defaultdict(list)
    for o in orders.itertuples():
        orders_by_enterprise[o.enterprise_id].append(o)
    scored_rows = []
    # the scores read a grid of every 15 minutes from the first to the last local day read: a window
    # that would end after the last interval of the last day has no mean
    last_day = max(readings["reading_date"])
    grid_end = pd.Timestamp(last_day + dt.timedelta(days=1)).tz_localize(LOCAL).tz_convert("UTC") - QUARTER
    e_share = s("abnormal_fluctuation", "epsilon_share")
    ratio = s("surge", "step_ratio")
    for meter, by_time in meters.items():
        times = sorted(by_time)
        last_reading = times[-1]
        factor = {}
        for day in {r["date"] for r in by_time.values()}:
            context = contexts[(meter, day)]
            profile = usual.get((meter, day))
            values = []
            if profile and context.level:
                for r in by_time.values():
                    if r["date"] != day or r["state"] != "usable" or r["after_gap"]:
                        continue
                    u = profile[0][r["slot"]]
                    if u is not None and u > 0 and u >= s("baseline", "material_share") * context.level:
                        values.append(r["load"] / u)
            factor[day] = (
                percentile_cont(values, 0.5) if len(values) >= s("baseline", "min_factor_slots") else None
            ) or 1.0
        rows = {}
        for t in times:
            r = by_time[t]
            context = contexts[(meter, r["date"])]
            profile = usual.get((meter, r["date"]))
            relative = r["load"] if r["state"] == "usable" and not r["after_gap"] else None
            usual_load = (
                factor[r["date"]] * profile[0][r["slot"]]
                if profile and profile[0][r["slot"]] is not None
                else None
            )
            hour = r["slot"] // 4
            in_force = within = False
            for o in orders_by_enterprise.get(r["enterprise_id"], ()):
                if o.effective_from <= t:
                    if pd.isna(o.effective_to) or t < o.effective_to:
                        in_force = True
                    if pd.isna(o.effective_to) or o.effective_to.tz_convert(LOCAL).date() >= r[
                        "date"
                    ] - dt.timedelta(days=lookback):
                        within = True
            rows[t] = {
                **r,
                "relative": relative,
                "usual": usual_load,
                "usual_step": profile[1][r["slot"]] if profile else None,
                "paired": relative is not None and usual_load is not None,
                "level": context.level,
                "high": _max([context.lookback_highs[h] for h in (hour - 1, hour, hour + 1) if 0 <= h <= 23]),
                "max_hour_mean": context.lookback_max_hour_mean,
                "judged_day": bool(context.level and context.level > 0)
                and s("baseline", "min_day_factor") <= factor[r["date"]] <= s("baseline", "max_day_factor")
                and len(context.similar_dates) >= s("baseline", "min_similar_days")
                and context.kind_days >= s("baseline", "min_kind_days")
                and not within,
                "under_suspension": in_force,
            }

        frame = _Frames(rows, times)

        for t in times:
            row = rows[t]
            level = row["level"]
            e = e_share * level if level else None

            def paired_mean(members):
                return _paired_mean(members, int(s("abnormal_fluctuation", "window_min_readings")))

            win, uwin = None, None
            if t + (window - 1) * QUARTER <= grid_end:
                win, uwin = paired_mean(frame(t, pd.Timedelta(0), (window - 1) * QUARTER))
            row["window"], row["window_usual"] = win, uwin
            row["before"], row["before_usual"] = paired_mean(frame(t, -window * QUARTER, -QUARTER))
            row["after"], row["after_usual"] = None, None
            if t + (2 * window - 1) * QUARTER <= grid_end:
                row["after"], row["after_usual"] = paired_mean(
                    frame(t, window * QUARTER, (2 * window - 1) * QUARTER)
                )
            logs = {}
            if win is not None and e is not None:
                logs["usual"] = math.log((win + e) / (uwin + e))
                for side in ("before", "after"):
                    if row[side] is not None:
                        logs[side] = math.log((win + e) / (row[side] + e))
                        logs["u_" + side] = math.log((uwin + e) / (row[side + "_usual"] + e))
            row["logs"] = logs

        def pair_mean(u, frame=frame):
            values = [m["relative"] for m in frame(u, -QUARTER, pd.Timedelta(0)) if m["relative"] is not None]
            return sum(values) / len(values) if values else None

        def edge_log(upper, lower, e, pair_mean=pair_mean):
            a, b = pair_mean(upper), pair_mean(lower)
            return math.log((a + e) / (b + e)) if a is not None and b is not None else None

        def step_in(u, rows=rows, edge_log=edge_log):
            here = rows.get(u)
            if here is None or not here["level"]:
                return None
            return edge_log(u + QUARTER, u - QUARTER, e_share * here["level"])

        def step_out(u, rows=rows, edge_log=edge_log):
            here = rows.get(u)
            if here is None or not here["level"]:
                return None
            return edge_log(u, u + 2 * QUARTER, e_share * here["level"])

        for t in times:
            row = rows[t]
            near = frame(t, -tolerance * QUARTER, tolerance * QUARTER)
            row["rise"] = row["drop"] = None
            logs = row["logs"]
            complete = t + (2 * window - 1) * QUARTER <= last_reading
            full = len(near) == 2 * tolerance + 1 and all(
                m["window_usual"] is not None and "u_before" in m["logs"] and "u_after" in m["logs"]
                for m in near
            )
            if (
                row["judged_day"]
                and "usual" in logs
                and "before" in logs
                and "after" in logs
                and complete
                and full
            ):
                # the usual window mean at its most favourable start within the tolerance
                usual_windows = [m["window_usual"] for m in near if m["window_usual"] is not None]
                e = e_share * row["level"]
                rise = [math.log((row["window"] + e) / (max(usual_windows) + e))]
                drop = [math.log((row["window"] + e) / (min(usual_windows) + e))]
                for side in ("before", "after"):
                    if side in logs:
                        profile_changes = [m["logs"]["u_" + side] for m in near if "u_" + side in m["logs"]]
                        rise.append(logs[side] - max(profile_changes))
                        drop.append(logs[side] - min(profile_changes))

                # the edges (half hour against half hour): the steepest step in from rise_reach (drop_reach)
                # intervals before the window's start to its start, the steepest step out from its end to the
                # larger reach after it
                def steps(function, offsets, t=t):
                    return [v for k in offsets if (v := function(t + k * QUARTER)) is not None]

                ins_rise = steps(step_in, range(-rise_reach, 1))
                ins_drop = steps(step_in, range(-drop_reach, 1))
                outs = steps(step_out, range(window - 1, window + reach))
                if ins_rise and outs:
                    row["rise"] = min([*rise, max(ins_rise), max(outs)])
                if ins_drop and outs:
                    row["drop"] = -max([*drop, min(ins_drop), min(outs)])
            hour_values = [
                m["relative"]
                for m in frame(t, -(peak_n - 1) * QUARTER, pd.Timedelta(0))
                if m["relative"] is not None
            ]
            row["hour_mean"] = sum(hour_values) / len(hour_values) if len(hour_values) >= peak_n - 1 else None
            steps = [m["usual_step"] for m in frame(t, -step_tolerance * QUARTER, step_tolerance * QUARTER)]
            usual_step = _max(steps)
            nxt = rows.get(t + QUARTER)
            prev = row["prev_load"]
            row["surge"] = bool(
                row["judged_day"]
                and row["relative"] is not None
                and prev is not None
                and prev > 0
                and nxt is not None
                and nxt["relative"] is not None
                and row["relative"] >= ratio * prev
                and nxt["relative"] >= ratio * prev
                and usual_step is not None
                and row["relative"] - prev > usual_step
                and row["high"] is not None
                and row["relative"] > s("surge", "high_margin") * row["high"]
                and nxt["relative"] > s("surge", "high_margin") * row["high"]
            )
            scored_rows.append({"meter_id": meter, **{k: v for k, v in row.items() if k != "logs"}})
    scored = pd.DataFrame(scored_rows)

    # 6. thresholds and flagged intervals
    daily = (
        scored.groupby(["meter_id", "date"])
        .agg(max_rise=("rise", "max"), max_drop=("drop", "max"))
        .reset_index()
    )
    base_rise = math.log(s("abnormal_fluctuation", "rise_ratio"))
    base_drop = math.log(s("abnormal_fluctuation", "drop_ratio"))
    thresholds_by_day = {}
    for meter, group in daily.groupby("meter_id"):
        for day in group["date"]:
            history = group[
                (group["date"] < day)
                & (group["date"] >= day - dt.timedelta(days=int(s("abnormal_fluctuation", "adaptive_days"))))
            ]
            rises = [v for v in history["max_rise"] if pd.notna(v)]
            drops = [v for v in history["max_drop"] if pd.notna(v)]
            k, q = (
                s("abnormal_fluctuation", "adaptive_multiplier"),
                s("abnormal_fluctuation", "adaptive_quantile"),
            )
            if len(rises) >= s("abnormal_fluctuation", "adaptive_min_days"):
                thresholds_by_day[(meter, day)] = (
                    max(base_rise, k * percentile_cont(rises, q)),
                    max(base_drop, k * percentile_cont(drops, q)),
                )
            else:
                thresholds_by_day[(meter, day)] = (base_rise, base_drop)
    flagged = {}

    def flag(subject, enterprise, rule, direction, at, magnitude):
        key = (subject, rule, direction, at)
        if key not in flagged or flagged[key]["magnitude"] < magnitude:
            flagged[key] = {
                "subject_id": subject,
                "enterprise_id": enterprise,
                "rule": rule,
                "direction": direction,
                "interval_at": at,
                "magnitude": magnitude,
            }

    load_ratio = s("overload", "load_ratio")
    suspension_ratio = s("suspension_violation", "load_ratio")
    for r in scored.itertuples():
        capacity = r.capacity
        if r.state == "usable" and capacity and capacity > 0:
            if r.load >= load_ratio * capacity:
                flag(r.meter_id, r.enterprise_id, "overload", "rise", r.at, r.load / (load_ratio * capacity))
            if r.under_suspension and r.load > suspension_ratio * capacity:
                flag(
                    r.meter_id,
                    r.enterprise_id,
                    "suspension_violation",
                    "rise",
                    r.at,
                    r.load / (suspension_ratio * capacity),
                )
        if r.surge:
            for k in range(2):
                flag(
                    r.meter_id,
                    r.enterprise_id,
                    "surge",
                    "rise",
                    r.at + k * QUARTER,
                    r.load / (ratio * r.prev_load),
                )
        up, down = thresholds_by_day[(r.meter_id, r.date)]
        for direction, score, limit in (("rise", r.rise, up), ("drop", r.drop, down)):
            if score is not None and pd.notna(score) and score > limit:
                for k in range(window):
                    flag(
                        r.meter_id,
                        r.enterprise_id,
                        "abnormal_fluctuation",
                        direction,
                        r.at + k * QUARTER,
                        math.exp(score) / s("abnormal_fluctuation", direction + "_ratio"),
                    )
        if (
            r.judged_day
            and r.max_hour_mean
            and r.hour_mean is not None
            and pd.notna(r.hour_mean)
            and r.hour_mean > s("abnormal_fluctuation", "peak_ratio") * r.max_hour_mean
        ):
            for k in range(peak_n):
                flag(
                    r.meter_id,
                    r.enterprise_id,
                    "abnormal_fluctuation",
                    "rise",
                    r.at - k * QUARTER,
                    r.hour_mean / r.max_hour_mean / s("abnormal_fluctuation", "peak_ratio"),
                )
    for r in cables.itertuples():
        if r.temperature_c >= s("cable_over_temperature", "temperature_c"):
            flag(
                r.cable_id,
                r.enterprise_id,
                "cable_over_temperature",
                "rise",
                r.reading_at,
                r.temperature_c / s("cable_over_temperature", "temperature_c"),
            )
    intervals = pd.DataFrame(list(flagged.values()))
    return {
        "scored": scored,
        "daily": daily,
        "intervals": intervals,
        "contexts": contexts,
        "usual": usual,
        "days": days,
    }
