"""Fire and Rescue Detachment (消防救援支队): its feeds, staged in ``dbt_project/models/staging/xfj/``."""

from __future__ import annotations

from ..columns import alert_columns
from ..connections import api
from ..model import Feed
from ..references import CHANNELS

FEEDS: tuple[Feed, ...] = (
    Feed(
        "alerts_119",
        "xfj",
        "119 fire and rescue calls",
        api("xfj", "alerts_119"),
        primary_key=("incident_id",),
        event_time="received_at",
        rows_per_day=160,
        columns=alert_columns(CHANNELS[1]),
        tags=("response",),
    ),
)
