"""Transport Bureau (交通运输局): its feeds, staged in ``dbt_project/models/staging/jtj/``."""

from __future__ import annotations

from ..columns import boolean, key, lat, lon, number, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "flood_prone_roads",
        "jtj",
        "Road segments that flood",
        FileDrop(folder="jtj/flood_prone_roads", format="csv", pattern="flood_prone_roads_*.csv"),
        primary_key=("segment_id",),
        snapshot=True,
        rows_per_day=130,
        name_noun_zh="路",
        columns=(
            key("segment_id"),
            string("road_name", nullable=False),
            town(),
            lat("start_lat"),
            lon("start_lon"),
            number("max_water_depth_cm", min=0, max=300, unit="cm"),
            boolean("is_closed", nullable=False),
            updated_at(),
        ),
        tags=("flood",),
    ),
)
