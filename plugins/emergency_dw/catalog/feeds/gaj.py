"""Public Security Bureau (公安局): its feeds, staged in ``dbt_project/models/staging/gaj/``."""

from __future__ import annotations

from ..columns import alert_columns
from ..connections import api
from ..model import Feed
from ..references import CHANNELS

FEEDS: tuple[Feed, ...] = (
    Feed(
        "alerts_110",
        "gaj",
        "110 police emergency calls",
        api("gaj", "alerts_110"),
        primary_key=("incident_id",),
        event_time="received_at",
        rows_per_day=2_400,
        columns=alert_columns(CHANNELS[0]),
        tags=("response",),
    ),
)
