"""Forestry Bureau (林业局): its feeds, staged in ``dbt_project/models/staging/lyj/``."""

from __future__ import annotations

from ..columns import integer, key, number, person, timestamp, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "forest_fire_patrols",
        "lyj",
        "Forest fire patrols by rangers",
        FileDrop(folder="lyj/forest_fire_patrols", format="csv", pattern="forest_fire_patrols_*.csv"),
        primary_key=("patrol_id",),
        event_time="started_at",
        rows_per_day=150,
        time_order=(("started_at", "ended_at"),),
        columns=(
            key("patrol_id"),
            key("ranger_id"),
            person("ranger_name"),
            town(),
            timestamp("started_at", nullable=False),
            timestamp("ended_at"),
            number("route_km", min=0, max=60, unit="km"),
            integer("fire_danger_level", min=1, max=5),
            integer("hotspots_found", min=0, max=50),
            updated_at(),
        ),
        tags=("forest_fire",),
    ),
)
