"""Urban Management and Law Enforcement Bureau (综合行政执法局): its feeds, staged in ``dbt_project/models/staging/zfj/``."""

from __future__ import annotations

from ..columns import key, number, string, timestamp, town, updated_at
from ..connections import api
from ..model import Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "gas_pipeline_alarms",
        "zfj",
        "Gas pipeline leak alarms",
        api("zfj", "gas_pipeline_alarms"),
        primary_key=("alarm_id",),
        event_time="alarm_at",
        rows_per_day=45,
        time_order=(("alarm_at", "handled_at"),),
        columns=(
            key("alarm_id"),
            key("sensor_id"),
            town(),
            timestamp("alarm_at", nullable=False),
            number("gas_concentration_lel", nullable=False, min=0, max=100, unit="%LEL"),
            string("alarm_level", nullable=False, allowed=("low", "high")),
            timestamp("handled_at"),
            string("status", nullable=False, allowed=("open", "handled", "false_alarm")),
            updated_at(),
        ),
        tags=("gas",),
    ),
)
