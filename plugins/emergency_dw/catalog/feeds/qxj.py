"""Meteorological Bureau (气象局): its feeds, staged in ``dbt_project/models/staging/qxj/``."""

from __future__ import annotations

from ..columns import key, number, string, timestamp, town, updated_at
from ..connections import api, database
from ..model import Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "weather_warnings",
        "qxj",
        "Weather warnings issued",
        api("qxj", "weather_warnings"),
        primary_key=("warning_id",),
        event_time="issued_at",
        rows_per_day=3,
        time_order=(("issued_at", "expires_at"),),
        columns=(
            key("warning_id"),
            string(
                "warning_type",
                nullable=False,
                allowed=("typhoon", "rainstorm", "gale", "heat", "cold", "fog", "thunderstorm"),
            ),
            string("level", nullable=False, allowed=("blue", "yellow", "orange", "red")),
            timestamp("issued_at", nullable=False),
            timestamp("expires_at"),
            string("area", description="towns covered, comma separated"),
            string("description"),
            updated_at(),
        ),
        tags=("weather",),
    ),
    Feed(
        "rainfall_observations",
        "qxj",
        "Hourly rainfall at automatic weather stations",
        database("qxj", "rainfall_observations"),
        primary_key=("station_id", "observed_at"),
        event_time="observed_at",
        rows_per_day=3_840,
        columns=(
            key("station_id"),
            town(),
            timestamp("observed_at", nullable=False),
            number("rainfall_mm", nullable=False, min=0, max=300, unit="mm"),
            updated_at(),
        ),
        tags=("weather", "flood"),
    ),
)
