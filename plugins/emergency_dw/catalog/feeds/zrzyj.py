"""Natural Resources and Planning Bureau (自然资源和规划局): its feeds, staged in ``dbt_project/models/staging/zrzyj/``."""

from __future__ import annotations

from ..columns import integer, key, lat, lon, person, phone, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "geohazard_points",
        "zrzyj",
        "Geological hazard points (landslides, debris flows) and their monitors",
        FileDrop(folder="zrzyj/geohazard_points", format="csv", pattern="geohazard_points_*.csv"),
        primary_key=("point_id",),
        snapshot=True,
        rows_per_day=480,
        columns=(
            key("point_id"),
            string(
                "hazard_type", nullable=False, allowed=("landslide", "debris_flow", "collapse", "subsidence")
            ),
            town(),
            lat(),
            lon(),
            integer("threatened_people", min=0, max=10_000),
            string("risk_level", nullable=False, allowed=("high", "medium", "low")),
            person("monitor_name"),
            phone("monitor_phone"),
            updated_at(),
        ),
        tags=("geohazard",),
    ),
)
