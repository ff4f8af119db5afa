"""Emergency response: 110/119/120 calls, the units dispatched to them, rescue teams, rescuers and GPS.

Calls follow the day's rhythm (``diurnal_seconds``) with an event-type mix per channel (police calls are
mostly public-order cases and road accidents, fire calls mostly fires, gas leaks and lift entrapments,
ambulance calls mostly acute illness and injuries), mountain towns get the forest fires and landslides,
coastal towns the waterway accidents. Dispatch regenerates the same day's calls (the generators are
deterministic) and sends the nearest suitable teams' units, with realistic alarm-handling, turnout,
travel and on-scene times; a few status buttons are never pressed (NaT), as in real dispatch systems.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import get_feed
from ...catalog.references import EVENT_TYPES
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
from ..world import TOWN_CODES, TOWN_LAT, TOWN_LON, TOWN_NAMES, TOWN_WEIGHTS
from .base import DayOutput, SimContext, conform, generator

SLOTS = 96
SLOT_S = 900


CATEGORY = {e.code: e.category for e in EVENT_TYPES}
MOUNTAIN_TOWNS = np.array([1, 6, 7, 14, 15, 16, 17])  # 矾山 藻溪 桥墩 莒溪 南宋 凤阳 岱岭
COASTAL_TOWNS = np.array([2, 5, 9, 11, 12, 13])  # 马站 金乡 大渔 炎亭 沿浦 霞关


def lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return np.asarray(median) * rng.lognormal(0.0, sigma, n)


# ---------------------------------------------------------------------------------------------- calls
@dataclass(frozen=True)
class Channel:
    feed: str
    mix: dict[str, float]  # event type code -> share of calls
    priority: tuple[float, float, float, float]  # default shares of priority 1..4
    peaks: tuple[float, ...]  # local hours around which calls cluster
    weekend_factor: float


CHANNELS: dict[str, Channel] = {
    "110": Channel(
        "alerts_110",
        {
            "040201": 0.36,  # public order
            "040401": 0.24,  # assistance requests
            "040101": 0.13,  # criminal cases
            "020201": 0.19,  # road traffic
            "040301": 0.01,  # mass incidents
            "030402": 0.02,
            "020302": 0.01,
            "020101": 0.01,
            "010202": 0.01,
            "020303": 0.02,
        },
        (0.04, 0.18, 0.46, 0.32),
        (11.0, 21.0),
        1.08,
    ),
    "119": Channel(
        "alerts_119",
        {
            "020301": 0.30,  # building fire
            "020302": 0.12,  # gas leak
            "020303": 0.18,  # lift entrapment
            "010701": 0.08,  # forest fire
            "020203": 0.05,  # waterway
            "020201": 0.08,  # traffic rescue (cutting people out)
            "020102": 0.03,  # hazardous chemicals
            "020304": 0.01,
            "040401": 0.10,  # lock-outs, animals, honeycombs
            "010101": 0.03,
            "010401": 0.01,
            "020101": 0.01,
        },
        (0.10, 0.36, 0.38, 0.16),
        (12.0, 18.0),
        1.0,
    ),
    "120": Channel(
        "alerts_120",
        {
            "030401": 0.55,  # acute illness
            "030402": 0.22,  # injuries
            "020201": 0.12,  # road traffic
            "030301": 0.02,
            "020101": 0.03,
            "040401": 0.04,  # transfers
            "030101": 0.02,
        },
        (0.09, 0.33, 0.42, 0.16),
        (9.0, 20.0),
        0.97,
    ),
}

PRIORITY_BY_TYPE: dict[str, tuple[float, float, float, float]] = {
    "040101": (0.08, 0.30, 0.42, 0.20),
    "040301": (0.30, 0.40, 0.20, 0.10),
    "040201": (0.03, 0.17, 0.50, 0.30),
    "040401": (0.01, 0.09, 0.40, 0.50),
    "020301": (0.22, 0.48, 0.25, 0.05),
    "010701": (0.30, 0.45, 0.20, 0.05),
    "020102": (0.40, 0.40, 0.15, 0.05),
    "020304": (0.50, 0.30, 0.15, 0.05),
    "020303": (0.02, 0.30, 0.50, 0.18),
    "020203": (0.35, 0.40, 0.20, 0.05),
    "030401": (0.14, 0.40, 0.36, 0.10),
}


def _seasonal_mix(mix: dict[str, float], day: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Event types and their shares on ``day``: forest fires in the dry months, floods in typhoon season."""
    codes = np.array(list(mix))
    shares = np.array(list(mix.values()))
    month = day.month
    factor = {
        "010701": 2.0 if month in (1, 2, 3, 4, 11, 12) else 0.5 if month in (6, 7, 8, 9) else 1.0,
        "010101": 3.0 if month in (6, 7, 8, 9) else 0.5,
        "010202": 3.0 if month in (6, 7, 8, 9) else 0.5,
        "010401": 3.0 if month in (6, 7, 8, 9) else 0.5,
    }
    shares = shares * np.array([factor.get(c, 1.0) for c in codes])
    return codes, shares / shares.sum()


ROADS = np.array(
    ["104国道", "灵江路", "人民大道", "玉苍路", "建兴路", "沿海高速", "钱宜线", "龙金大道", "望金线"]
)
TEMPLATES: dict[str, list[str]] = {
    "040201": [
        "{town}某小区邻里纠纷，双方发生争执",
        "{town}夜宵摊有人酒后闹事",
        "{town}菜市场内两人因琐事打架",
        "{town}KTV门口有人聚众斗殴",
        "{town}出租屋噪音扰民，报警人要求处理",
    ],
    "040101": [
        "{town}沿街商铺被盗，损失约{n}千元",
        "{town}报警人称电动车被盗",
        "{town}报警人遭电信诈骗，被骗{n}万元",
        "{town}民宅夜间被撬门入室盗窃",
    ],
    "040401": [
        "{town}一名老人走失，家属求助",
        "{town}报警人钥匙反锁在屋内求助",
        "{town}小孩与家人走散，请求帮助寻找",
        "{town}有人醉酒倒在路边，需要帮助",
        "{town}路边发现受伤流浪狗，请求救助",
    ],
    "040301": ["{town}{n}十余名工人聚集讨要工资", "{town}村民聚集阻挠工地施工"],
    "020201": [
        "{town}{road}两车相撞，{hurt}",
        "{town}{road}电动车与小车剐蹭，{hurt}",
        "{town}{road}货车侧翻，道路堵塞",
        "{town}{road}多车追尾，{hurt}",
    ],
    "020301": [
        "{town}某小区{n}楼住户厨房起火，有浓烟",
        "{town}一家鞋厂仓库起火",
        "{town}沿街店铺电线短路起火",
        "{town}民房起火，疑有人员被困",
        "{town}电动车充电时起火",
    ],
    "020302": [
        "{town}居民家中液化气罐泄漏，闻到浓烈气味",
        "{town}餐馆燃气管道泄漏",
        "{town}路边燃气管道被施工挖断",
    ],
    "020303": ["{town}某小区电梯故障，{n}人被困", "{town}商场电梯停在两层之间，有人被困"],
    "010701": ["{town}山上起火，火势蔓延", "{town}祭扫引发山林起火", "{town}林地冒烟，疑似山火"],
    "020203": ["{town}河道有人落水", "{town}渔船在近海搁浅，请求救援", "{town}水库边有人溺水"],
    "020102": ["{town}化工厂储罐泄漏，有刺激性气味", "{town}危化品运输车辆发生泄漏"],
    "020304": ["{town}老旧民房部分倒塌，疑有人员被困"],
    "020101": ["{town}工厂工人手部被机器卷入", "{town}工地有人高处坠落"],
    "010101": ["{town}低洼路段积水，车辆被困", "{town}民房进水，老人被困需转移"],
    "010202": ["{town}暴雨导致路面积水，车辆熄火求助"],
    "010401": ["{town}山体滑坡，掩埋道路", "{town}村后山坡滑塌，威胁民房"],
    "030401": [
        "{town}{age}岁老人突发胸痛",
        "{town}患者突发意识不清",
        "{town}{age}岁男子呼吸困难",
        "{town}孕妇临产，需送医",
        "{town}患者突发抽搐",
    ],
    "030402": [
        "{town}一人从高处摔下，腿部受伤",
        "{town}有人被刀划伤，出血较多",
        "{town}老人在家中跌倒，无法起身",
    ],
    "030301": ["{town}{n}人聚餐后出现呕吐腹泻", "{town}工厂食堂多名工人疑似食物中毒"],
    "030101": ["{town}患者高烧不退，疑似传染病"],
}
HURT = np.array(["无人员受伤", "一人受伤", "两人受伤，需要救护车", "驾驶员被困车内"])


def _descriptions(rng: np.random.Generator, codes: np.ndarray, towns: np.ndarray) -> list[str]:
    n = len(codes)
    pick = rng.integers(0, 1000, n)
    nums = rng.integers(2, 9, n)
    ages = rng.integers(35, 92, n)
    roads = rng.choice(ROADS, n)
    hurt = rng.choice(HURT, n, p=[0.55, 0.3, 0.1, 0.05])
    out = []
    for code, town, k, num, age, road, h in zip(codes, towns, pick, nums, ages, roads, hurt, strict=True):
        options = TEMPLATES.get(code, ["{town}报警求助"])
        out.append(options[k % len(options)].format(town=TOWN_NAMES[town], n=num, age=age, road=road, hurt=h))
    return out


def _calls(ctx: SimContext, day: dt.date, channel: str) -> pd.DataFrame:
    spec = CHANNELS[channel]
    feed = get_feed(spec.feed)
    volume = ctx.rng(feed.name, day, "volume")
    expected = scaled(feed.rows_per_day, ctx.scale) * (spec.weekend_factor if day.weekday() >= 5 else 1.0)
    n = max(1, int(volume.poisson(expected * volume.lognormal(0.0, 0.06))))
    seconds = diurnal_seconds(ctx.rng(feed.name, day, "times"), n, spec.peaks)
    codes, shares = _seasonal_mix(spec.mix, day)
    code = ctx.rng(feed.name, day, "types").choice(codes, n, p=shares)

    town_rng = ctx.rng(feed.name, day, "towns")
    town = town_rng.choice(len(TOWN_WEIGHTS), n, p=TOWN_WEIGHTS)
    for group, types in ((MOUNTAIN_TOWNS, ("010701", "010401")), (COASTAL_TOWNS, ("020203",))):
        weights = TOWN_WEIGHTS.copy()
        weights[group] *= 6
        mask = np.isin(code, types)
        town[mask] = town_rng.choice(len(weights), mask.sum(), p=weights / weights.sum())

    prio_rng = ctx.rng(feed.name, day, "priority")
    priority = prio_rng.choice(np.arange(1, 5), n, p=spec.priority)
    for c in sorted(set(code) & set(PRIORITY_BY_TYPE)):
        mask = code == c
        priority[mask] = prio_rng.choice(np.arange(1, 5), mask.sum(), p=PRIORITY_BY_TYPE[c])

    where = ctx.rng(feed.name, day, "coords")
    spread_km = np.where(np.isin(town, MOUNTAIN_TOWNS), 4.0, 2.5)  # villages in the hills lie farther out
    lat = TOWN_LAT[town] + where.normal(0, 1, n) * spread_km / KM_PER_DEG_LAT
    lon = TOWN_LON[town] + where.normal(0, 1, n) * spread_km / KM_PER_DEG_LON

    caller = ctx.rng(feed.name, day, "callers")
    phone = np.array(phones(caller, n), dtype=object)
    phone[caller.random(n) < 0.02] = None  # caller id withheld or unavailable
    text = _descriptions(ctx.rng(feed.name, day, "text"), code, town)

    received = at(day, seconds)
    closed = at(day, seconds + ctx.rng(feed.name, day, "closing").uniform(120, 2400, n))
    return pd.DataFrame(
        {
            "incident_id": serial_ids(f"{channel}-{day:%Y%m%d}-", range(1, n + 1), 5),
            "channel": channel,
            "event_type_code": code,
            "priority": priority.astype(int),
            "town_code": TOWN_CODES[town],
            "received_at": received,
            "lat": np.round(lat, 6),
            "lon": np.round(lon, 6),
            "caller_phone": phone,
            "description": text,
            "updated_at": clamp_to_day(closed, day),
        }
    )


@generator("alerts_110")
def alerts_110(ctx: SimContext, day: dt.date) -> DayOutput:
    return DayOutput(conform(get_feed("alerts_110"), _calls(ctx, day, "110")))


@generator("alerts_119")
def alerts_119(ctx: SimContext, day: dt.date) -> DayOutput:
    return DayOutput(conform(get_feed("alerts_119"), _calls(ctx, day, "119")))


@generator("alerts_120")
def alerts_120(ctx: SimContext, day: dt.date) -> DayOutput:
    return DayOutput(conform(get_feed("alerts_120"), _calls(ctx, day, "120")))


# ---------------------------------------------------------------------------------------------- dispatch
HANDLING_MEDIAN_S = {"110": 40.0, "119": 50.0, "120": 45.0}
TURNOUT_MEDIAN_S = {"fire": 70.0, "hazmat": 70.0, "water_rescue": 70.0, "medical": 45.0, "general": 60.0}
SOCIAL_TURNOUT_MEDIAN_S = 15 * 60.0
TRAVEL_MEDIAN_S = 8 * 60.0
HAZMAT_TYPES = ("020102",)
WATER_TYPES = ("020203", "010101", "010501")
SOCIAL_SPECIALTY = {
    "010101": "water_rescue",
    "010201": "water_rescue",
    "010202": "water_rescue",
    "010501": "water_rescue",
    "010401": "mountain_rescue",
    "010402": "mountain_rescue",
    "010701": "mountain_rescue",
}


def _units_per_fire_call(rng: np.random.Generator, priority: np.ndarray, code: np.ndarray) -> np.ndarray:
    n = len(priority)
    units = np.select(
        [priority == 1, priority == 2, priority == 3],
        [
            rng.choice([2, 3], n, p=[0.3, 0.7]),
            rng.choice([1, 2, 3], n, p=[0.2, 0.5, 0.3]),
            rng.choice([1, 2], n, p=[0.6, 0.4]),
        ],
        1,
    )
    units = np.where(np.isin(code, ("020303", "040401")), 1, units)  # lifts, lock-outs: one engine
    return np.where(np.isin(code, HAZMAT_TYPES + WATER_TYPES), np.maximum(units, 2), units)


@generator("dispatch_records")
def dispatch_records(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("dispatch_records")
    teams = ctx.world.teams
    t_lat, t_lon = teams["base_lat"].to_numpy(), teams["base_lon"].to_numpy()
    specialty = teams["specialty"].to_numpy()
    professional = (teams["team_type"] == "professional").to_numpy()
    calls = pd.concat(
        [alerts_110(ctx, day).frame, alerts_119(ctx, day).frame, alerts_120(ctx, day).frame],
        ignore_index=True,
    )
    pick = ctx.rng(feed.name, day, "units")
    # Availability and roads make the nearest station not always the one sent: noisy distances.
    dist = km_between(
        calls["lat"].to_numpy()[:, None], calls["lon"].to_numpy()[:, None], t_lat[None, :], t_lon[None, :]
    )
    noisy = dist * pick.lognormal(0.0, 0.25, dist.shape)

    def nearest(rows: np.ndarray, pool: np.ndarray, rank: int = 0) -> np.ndarray:
        masked = np.where(pool[None, :], noisy[rows], np.inf)
        return np.argsort(masked, axis=1, kind="stable")[:, rank]

    channel = calls["channel"].to_numpy()
    code = calls["event_type_code"].to_numpy()
    priority = calls["priority"].to_numpy()
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (call index, team index, rank)

    # 110: a patrol car from the nearest police patrol brigade for about 60% of calls.
    police = professional & (specialty == "general")
    i110 = np.flatnonzero(channel == "110")
    sent = pick.random(len(i110)) < np.array([1.0, 0.85, 0.6, 0.35])[priority[i110] - 1]
    i110 = i110[sent]
    rows.append((i110, nearest(i110, police), np.zeros(len(i110), int)))
    # 120: the nearest emergency medical station's ambulance.
    i120 = np.flatnonzero(channel == "120")
    rows.append((i120, nearest(i120, professional & (specialty == "medical")), np.zeros(len(i120), int)))
    # 119: one to three engines from the nearest fire stations, with a specialist team where needed.
    i119 = np.flatnonzero(channel == "119")
    units = _units_per_fire_call(pick, priority[i119], code[i119])
    fire = professional & (specialty == "fire")
    for pool, types in (
        (professional & (specialty == "hazmat"), HAZMAT_TYPES),
        (professional & (specialty == "water_rescue"), WATER_TYPES),
    ):
        need = i119[np.isin(code[i119], types)]
        rows.append((need, nearest(need, pool), np.ones(len(need), int)))
    special = np.isin(code[i119], HAZMAT_TYPES + WATER_TYPES)
    engines = units - special
    for rank in range(3):
        has = i119[engines > rank]
        rows.append((has, nearest(has, fire, rank), np.full(len(has), rank + 1 if rank else 0)))
    # Natural disasters: about 3% also call out a social rescue team.
    natural = np.flatnonzero(np.array([CATEGORY[c] == "natural_disaster" for c in code], dtype=bool))
    natural = natural[pick.random(len(natural)) < 0.03]
    if len(natural):
        want = np.array([SOCIAL_SPECIALTY.get(c, "general") for c in code[natural]])
        chosen = np.empty(len(natural), int)
        for spec in np.unique(want):
            mask = want == spec
            chosen[mask] = nearest(natural[mask], ~professional & (specialty == spec))
        rows.append((natural, chosen, np.full(len(natural), 4)))

    call_idx = np.concatenate([r[0] for r in rows])
    team_idx = np.concatenate([r[1] for r in rows])
    rank = np.concatenate([r[2] for r in rows])
    order = np.lexsort((rank, call_idx))
    call_idx, team_idx, rank = call_idx[order], team_idx[order], rank[order]
    n = len(call_idx)

    times = ctx.rng(feed.name, day, "times")
    received_s = ((calls["received_at"] - day_start_utc(day)).dt.total_seconds().to_numpy())[call_idx]
    ch = channel[call_idx]
    social = ~professional[team_idx]
    spec = specialty[team_idx]
    handling = lognormal(times, np.array([HANDLING_MEDIAN_S[c] for c in ch]), 0.45, n)
    handling = np.maximum(handling, 8.0)
    later = np.where(times.random(n) < 0.85, times.exponential(25.0, n), times.uniform(300, 1500, n))
    dispatched = received_s + handling + np.where(rank > 0, later, 0.0)
    dispatched = np.where(social, received_s + times.uniform(1200, 5400, n), dispatched)
    dispatched = np.minimum(dispatched, DAY_S - 1)  # a call in the last minute is still dispatched today
    turnout_median = np.array([TURNOUT_MEDIAN_S.get(s, SOCIAL_TURNOUT_MEDIAN_S) for s in spec])
    turnout_median = np.where(social, SOCIAL_TURNOUT_MEDIAN_S, turnout_median)
    en_route = np.floor(dispatched) + np.maximum(lognormal(times, turnout_median, 0.4, n), 10.0)
    d_km = dist[call_idx, team_idx]
    distance_factor = np.clip(np.sqrt((d_km + 1.0) / 5.0), 0.6, 2.5)
    travel = lognormal(times, TRAVEL_MEDIAN_S, 0.4, n) * distance_factor * np.where(social, 1.6, 1.0)
    on_scene = en_route + np.maximum(travel, 90.0)
    on_duration = np.where(social, times.uniform(3600, 4 * 3600, n), times.uniform(20 * 60, 120 * 60, n))
    cleared = on_scene + on_duration
    stood_down = times.random(n) < 0.01  # recalled before arriving
    cleared = np.where(stood_down, en_route + times.uniform(60, 480, n), cleared)
    on_scene = np.where(stood_down, np.nan, on_scene)
    en_route = np.where(times.random(n) < 0.03, np.nan, en_route)  # the crew never pressed "en route"

    stamps = np.column_stack([dispatched, en_route, on_scene, cleared])
    team_ids = teams["team_id"].to_numpy()[team_idx]
    unit_no = times.integers(1, teams["vehicles"].to_numpy()[team_idx] + 1)
    frame = pd.DataFrame(
        {
            "incident_id": calls["incident_id"].to_numpy()[call_idx],
            "unit_id": [f"{t}-U{u}" for t, u in zip(team_ids, unit_no, strict=True)],
            "team_id": team_ids,
            "dispatched_at": at(day, dispatched),
            "en_route_at": at(day, en_route),
            "on_scene_at": at(day, on_scene),
            "cleared_at": at(day, cleared),
            "updated_at": clamp_to_day(at(day, np.nanmax(stamps, axis=1)), day),
        }
    )
    return DayOutput(conform(feed, frame))


# ---------------------------------------------------------------------------------------------- snapshots
@generator("rescue_teams")
def rescue_teams(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("rescue_teams")
    frame = ctx.world.teams.copy()
    frame["updated_at"] = ctx.world.touch_times(feed.name, len(frame), day)
    return DayOutput(conform(feed, frame))


@generator("rescuers")
def rescuers(ctx: SimContext, day: dt.date) -> DayOutput:
    feed = get_feed("rescuers")
    frame = ctx.world.rescuers.copy()
    frame["updated_at"] = ctx.world.touch_times(feed.name, len(frame), day)
    return DayOutput(conform(feed, frame))


# ---------------------------------------------------------------------------------------------- GPS
ON_DUTY_NOMINAL = 600
MISSIONS_PER_DAY = {"fire": 1.2, "hazmat": 0.3, "water_rescue": 0.4, "medical": 3.0, "general": 2.5}
MISSION_SLOTS = {
    "fire": (4, 12),
    "hazmat": (4, 12),
    "water_rescue": (4, 12),
    "medical": (4, 8),
    "general": (2, 6),
}


@generator("rescuer_positions")
def rescuer_positions(ctx: SimContext, day: dt.date) -> DayOutput:
    """Every on-duty rescuer's terminal reports every 15 minutes: at base, out on a mission, or at home."""
    feed = get_feed("rescuer_positions")
    people = ctx.world.rescuers
    teams = ctx.world.teams.set_index("team_id")
    team_type = teams.loc[people["team_id"], "team_type"].to_numpy()
    specialty_all = teams.loc[people["team_id"], "specialty"].to_numpy()
    homes = ctx.rng(feed.name, None, "homes")
    home_lat, home_lon = offset_points(
        homes,
        people["base_lat"].to_numpy(),
        people["base_lon"].to_numpy(),
        homes.uniform(0.5, 5.0, len(people)),
    )

    duty = ctx.rng(feed.name, day, "on-duty")
    n = min(len(people), scaled(ON_DUTY_NOMINAL, ctx.scale))
    weight = np.where(team_type == "professional", 1.0, 0.25)
    who = np.sort(duty.choice(len(people), n, replace=False, p=weight / weight.sum()))
    social = team_type[who] == "social"
    spec = specialty_all[who]
    base_lat, base_lon = people["base_lat"].to_numpy()[who], people["base_lon"].to_numpy()[who]

    # Shifts: fire, medical and specialist crews are on 24-hour duty; patrol officers work a day or a
    # night shift; volunteers only by day. Terminals keep reporting off duty, from home.
    slot = np.arange(SLOTS)[None, :]
    day_shift = (slot >= 32) & (slot < 80)
    night = duty.random(n) < 0.5
    patrol = ~social & (spec == "general")
    on_duty = np.ones((n, SLOTS), dtype=bool)
    on_duty[patrol & night] = ~day_shift[0]
    on_duty[patrol & ~night] = day_shift[0]
    on_duty[social] = (slot >= 32) & (slot < 72)

    mission = np.zeros((n, SLOTS), dtype=bool)
    site_lat, site_lon = base_lat[:, None].repeat(SLOTS, 1), base_lon[:, None].repeat(SLOTS, 1)
    rate = np.where(social, 0.2, np.array([MISSIONS_PER_DAY.get(s, 0.2) for s in spec]))
    episodes = duty.poisson(rate)
    for r in np.flatnonzero(episodes):
        lo, hi = (8, 24) if social[r] else MISSION_SLOTS[spec[r]]
        free = np.flatnonzero(on_duty[r])
        for _ in range(episodes[r]):
            start = int(duty.choice(free))
            length = int(duty.integers(lo, hi + 1))
            km = duty.uniform(3, 15) if social[r] else duty.uniform(1, 8)
            lat, lon = offset_points(duty, base_lat[r : r + 1], base_lon[r : r + 1], np.array([km]))
            mission[r, start : start + length] = True
            site_lat[r, start : start + length] = lat[0]
            site_lon[r, start : start + length] = lon[0]
    off = ~on_duty & ~mission
    target_lat = np.where(off, home_lat[who][:, None], site_lat)
    target_lon = np.where(off, home_lon[who][:, None], site_lon)

    walk = ctx.rng(feed.name, day, "walk")
    wander_m = np.where(patrol[:, None] & ~off, 250.0, np.where(off, 10.0, 25.0))
    lat = np.empty((n, SLOTS))
    lon = np.empty((n, SLOTS))
    pos_lat, pos_lon = target_lat[:, 0].copy(), target_lon[:, 0].copy()
    for k in range(SLOTS):
        pull = np.where(mission[:, k] | off[:, k], 0.7, 0.4)
        pos_lat = (
            pos_lat
            + pull * (target_lat[:, k] - pos_lat)
            + walk.normal(0, 1, n) * wander_m[:, k] / 1000 / KM_PER_DEG_LAT
        )
        pos_lon = (
            pos_lon
            + pull * (target_lon[:, k] - pos_lon)
            + walk.normal(0, 1, n) * wander_m[:, k] / 1000 / KM_PER_DEG_LON
        )
        lat[:, k], lon[:, k] = pos_lat, pos_lon

    offset = duty.integers(0, 870, n)[:, None]
    seconds = (slot * SLOT_S + offset + walk.integers(0, 16, (n, SLOTS))).ravel()
    status = np.where(mission, "on_mission", np.where(off, "off_duty", "idle")).ravel()
    order = np.lexsort((np.repeat(who, SLOTS), seconds))
    seconds = seconds[order]
    reported = at(day, seconds)
    lag = walk.integers(1, 30, len(seconds))
    frame = pd.DataFrame(
        {
            "position_id": serial_ids(f"P{day:%Y%m%d}", range(1, len(seconds) + 1), 7),
            "rescuer_id": people["rescuer_id"].to_numpy()[np.repeat(who, SLOTS)][order],
            "reported_at": reported,
            "lat": np.round(lat.ravel()[order], 6),
            "lon": np.round(lon.ravel()[order], 6),
            "status": status[order],
            "updated_at": clamp_to_day(at(day, seconds + lag), day),
        }
    )
    return DayOutput(conform(feed, frame))
