"""Water Resources Bureau (水利局): its feeds, staged in ``dbt_project/models/staging/slj/``."""

from __future__ import annotations

from ..columns import boolean, integer, key, lat, lon, number, string, timestamp, town, updated_at
from ..connections import api
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "reservoir_levels",
        "slj",
        "Hourly water levels of reservoirs and mountain ponds",
        api("slj", "reservoir_levels"),
        primary_key=("reservoir_id", "observed_at"),
        event_time="observed_at",
        rows_per_day=3_360,
        name_noun_zh="水库",
        columns=(
            key("reservoir_id"),
            string("name", nullable=False),
            town(),
            timestamp("observed_at", nullable=False),
            number("water_level_m", nullable=False, min=0, max=300, unit="m"),
            number("flood_limit_level_m", nullable=False, min=0, max=300, unit="m"),
            boolean("is_mountain_pond", nullable=False),
            updated_at(),
        ),
        tags=("flood",),
    ),
    Feed(
        "small_watershed_flood_points",
        "slj",
        "Flood monitoring points of small watersheds",
        FileDrop(
            folder="slj/small_watershed_flood_points",
            format="xlsx",
            pattern="小流域山洪监测点_*.xlsx",
            sheet="监测点",
        ),
        primary_key=("point_id",),
        snapshot=True,
        rows_per_day=220,
        name_noun_zh="山洪监测点",
        columns=(
            key("point_id", source_name="监测点编号"),
            string("name", nullable=False, source_name="监测点名称"),
            town(source_name="乡镇代码"),
            string("watershed", source_name="所属流域"),
            lat(source_name="纬度"),
            lon(source_name="经度"),
            number("warning_level_m", min=0, max=100, unit="m", source_name="预警水位(米)"),
            integer("households_at_risk", min=0, max=5_000, source_name="受威胁户数"),
            updated_at(source_name="更新时间"),
        ),
        tags=("flood",),
    ),
)
