"""Reference lists the feeds' codes are checked against: towns, event types, industries.

The dbt seeds carry the same lists for the marts; ``edw catalog --seeds`` writes them from here so a
code is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Town:
    code: str
    name_zh: str
    name: str
    lat: float
    lon: float
    kind: str = "town"  # town | ethnic_township


# The 18 towns of Cangnan county, Wenzhou (codes are the county's administrative-division codes).
TOWNS: tuple[Town, ...] = (
    Town("330327100", "灵溪镇", "Lingxi", 27.5050, 120.4150),
    Town("330327101", "矾山镇", "Fanshan", 27.3200, 120.4050),
    Town("330327102", "马站镇", "Mazhan", 27.2480, 120.4830),
    Town("330327103", "宜山镇", "Yishan", 27.5370, 120.5160),
    Town("330327104", "钱库镇", "Qianku", 27.4960, 120.5660),
    Town("330327105", "金乡镇", "Jinxiang", 27.4310, 120.6070),
    Town("330327106", "藻溪镇", "Zaoxi", 27.5130, 120.3360),
    Town("330327107", "桥墩镇", "Qiaodun", 27.4590, 120.2820),
    Town("330327108", "赤溪镇", "Chixi", 27.3550, 120.5380),
    Town("330327109", "大渔镇", "Dayu", 27.3450, 120.6200),
    Town("330327110", "望里镇", "Wangli", 27.4640, 120.5870),
    Town("330327111", "炎亭镇", "Yanting", 27.3890, 120.6530),
    Town("330327112", "沿浦镇", "Yanpu", 27.2050, 120.4880),
    Town("330327113", "霞关镇", "Xiaguan", 27.1800, 120.5500),
    Town("330327114", "莒溪镇", "Juxi", 27.4360, 120.2150),
    Town("330327115", "南宋镇", "Nansong", 27.4000, 120.3300),
    Town("330327200", "凤阳畲族乡", "Fengyang She", 27.3330, 120.3000, "ethnic_township"),
    Town("330327201", "岱岭畲族乡", "Dailing She", 27.2700, 120.4100, "ethnic_township"),
)
TOWN_CODES: tuple[str, ...] = tuple(t.code for t in TOWNS)


@dataclass(frozen=True)
class EventType:
    code: str
    category: str  # natural_disaster | accident | public_health | social_security
    name_zh: str
    name: str


# GB/T 35561-2017 classification of emergencies: category (2 digits), class (2), subclass (2).
EVENT_TYPES: tuple[EventType, ...] = (
    EventType("010101", "natural_disaster", "洪涝", "flood"),
    EventType("010201", "natural_disaster", "台风", "typhoon"),
    EventType("010202", "natural_disaster", "暴雨", "rainstorm"),
    EventType("010401", "natural_disaster", "滑坡", "landslide"),
    EventType("010402", "natural_disaster", "泥石流", "debris flow"),
    EventType("010501", "natural_disaster", "风暴潮", "storm surge"),
    EventType("010701", "natural_disaster", "森林火灾", "forest fire"),
    EventType("020101", "accident", "工矿商贸企业生产安全事故", "workplace accident"),
    EventType("020102", "accident", "危险化学品事故", "hazardous chemical accident"),
    EventType("020201", "accident", "道路交通事故", "road traffic accident"),
    EventType("020203", "accident", "水上交通事故", "waterway accident"),
    EventType("020301", "accident", "建筑火灾", "building fire"),
    EventType("020302", "accident", "燃气泄漏", "gas leak"),
    EventType("020303", "accident", "电梯困人", "lift entrapment"),
    EventType("020304", "accident", "房屋倒塌", "building collapse"),
    EventType("020501", "accident", "环境污染", "pollution incident"),
    EventType("030101", "public_health", "传染病疫情", "infectious disease"),
    EventType("030301", "public_health", "食物中毒", "food poisoning"),
    EventType("030401", "public_health", "急危重症", "acute illness"),
    EventType("030402", "public_health", "意外伤害", "injury"),
    EventType("040101", "social_security", "刑事案件", "criminal case"),
    EventType("040201", "social_security", "治安案件", "public order case"),
    EventType("040301", "social_security", "群体性事件", "mass incident"),
    EventType("040401", "social_security", "求助救助", "assistance request"),
)
EVENT_TYPE_CODES: tuple[str, ...] = tuple(e.code for e in EVENT_TYPES)
EVENT_CATEGORIES: tuple[str, ...] = ("natural_disaster", "accident", "public_health", "social_security")

# Industry of a metered enterprise and the shape of its electricity load.
INDUSTRIES: dict[str, str] = {
    "auto_parts": "汽摩配",
    "footwear_leather": "鞋革",
    "machinery": "机械制造",
    "chemicals": "化工",
    "plastics": "塑料制品",
    "metal_products": "金属制品",
    "textiles": "纺织服装",
    "food": "食品加工",
    "electrical": "电子电气",
    "printing_packaging": "印刷包装",
}
INDUSTRY_CODES: tuple[str, ...] = tuple(INDUSTRIES)

CHANNELS: tuple[str, ...] = ("110", "119", "120")
HAZARD_LEVELS: tuple[str, ...] = ("general", "major")
