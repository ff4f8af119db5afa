"""Statistics Bureau (统计局): its feeds, staged in ``dbt_project/models/staging/tjj/``."""

from __future__ import annotations

from ..columns import integer, number, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "town_population",
        "tjj",
        "Population of each town",
        FileDrop(folder="tjj/town_population", format="xlsx", pattern="乡镇人口_*.xlsx", sheet="人口"),
        primary_key=("town_code", "year"),
        snapshot=True,
        rows_per_day=18,
        columns=(
            town(source_name="乡镇代码"),
            integer("year", nullable=False, min=2000, max=2030, source_name="年份"),
            integer("resident_population", nullable=False, min=0, max=1_000_000, source_name="常住人口"),
            integer("registered_population", min=0, max=1_000_000, source_name="户籍人口"),
            integer("households", min=0, max=500_000, source_name="户数"),
            number("area_km2", min=0, max=2_000, unit="km2", source_name="面积(平方公里)"),
            updated_at(source_name="更新时间"),
        ),
        tags=("population",),
    ),
)
