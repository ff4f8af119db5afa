"""Health Commission (卫生健康委员会): its feeds, staged in ``dbt_project/models/staging/wjw/``."""

from __future__ import annotations

from ..columns import alert_columns
from ..connections import database
from ..model import Feed
from ..references import CHANNELS

FEEDS: tuple[Feed, ...] = (
    Feed(
        "alerts_120",
        "wjw",
        "120 ambulance calls",
        database("wjw", "alerts_120"),
        primary_key=("incident_id",),
        event_time="received_at",
        rows_per_day=650,
        columns=alert_columns(CHANNELS[2]),
        tags=("response",),
    ),
)
