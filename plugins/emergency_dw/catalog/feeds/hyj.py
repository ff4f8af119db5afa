"""Ocean and Fisheries Bureau (海洋与渔业局): its feeds, staged in ``dbt_project/models/staging/hyj/``."""

from __future__ import annotations

from ..columns import boolean, key, number, timestamp, updated_at
from ..connections import api
from ..model import Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "fishing_vessel_positions",
        "hyj",
        "Hourly positions of fishing vessels",
        api("hyj", "fishing_vessel_positions", page_size=5000),
        primary_key=("vessel_id", "reported_at"),
        event_time="reported_at",
        rows_per_day=21_600,
        partitioned=True,
        columns=(
            key("vessel_id"),
            timestamp("reported_at", nullable=False),
            number("lat", nullable=False, min=25.0, max=30.0, unit="degree"),
            number("lon", nullable=False, min=119.5, max=124.0, unit="degree"),
            number("speed_knots", min=0, max=30, unit="kn"),
            boolean("in_port", nullable=False),
            updated_at(),
        ),
        tags=("ocean", "typhoon"),
    ),
)
