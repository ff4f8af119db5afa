"""Culture, Radio, TV and Tourism Bureau (文化广电旅游局): its feeds, staged in ``dbt_project/models/staging/wgl/``."""

from __future__ import annotations

from ..columns import integer, key, timestamp, town, updated_at
from ..connections import api
from ..model import Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "scenic_spot_visitors",
        "wgl",
        "Hourly visitor counts at scenic spots",
        api("wgl", "scenic_spot_visitors"),
        primary_key=("spot_id", "observed_at"),
        event_time="observed_at",
        rows_per_day=576,
        columns=(
            key("spot_id"),
            town(),
            timestamp("observed_at", nullable=False),
            integer("visitors_in_park", nullable=False, min=0, max=100_000),
            integer("max_capacity", nullable=False, min=1, max=100_000),
            updated_at(),
        ),
        tags=("crowd",),
    ),
)
