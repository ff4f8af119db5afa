"""Agriculture and Rural Affairs Bureau (农业农村局): its feeds, staged in ``dbt_project/models/staging/nyj/``."""

from __future__ import annotations

from ..columns import boolean, key, lat, lon, number, person, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "agricultural_facilities",
        "nyj",
        "Greenhouses, farms and ponds exposed to typhoons",
        FileDrop(
            folder="nyj/agricultural_facilities", format="xlsx", pattern="农业设施_*.xlsx", sheet="设施"
        ),
        primary_key=("facility_id",),
        snapshot=True,
        rows_per_day=1_400,
        columns=(
            key("facility_id", source_name="设施编号"),
            string(
                "facility_type",
                nullable=False,
                allowed=("greenhouse", "livestock_farm", "aquaculture_pond", "grain_depot"),
                source_name="设施类型",
            ),
            town(source_name="乡镇代码"),
            lat(source_name="纬度"),
            lon(source_name="经度"),
            number("area_m2", min=0, max=1_000_000, unit="m2", source_name="面积(平方米)"),
            person("operator_name", source_name="经营者"),
            boolean("typhoon_reinforced", source_name="是否加固"),
            updated_at(source_name="更新时间"),
        ),
        tags=("typhoon",),
    ),
)
