"""State Grid Wenzhou Power Supply Company (国网温州供电公司): its feeds, staged in ``dbt_project/models/staging/power/``."""

from __future__ import annotations

from ..columns import boolean, key, lat, lon, number, string, timestamp, town, updated_at
from ..connections import api, database
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "power_load_readings",
        "power",
        "15-minute electricity load of metered industrial enterprises",
        FileDrop(folder="power/power_load_readings", format="parquet", pattern="load_readings_*.parquet"),
        primary_key=("meter_id", "reading_at"),
        event_time="reading_at",
        rows_per_day=1_378_080,
        partitioned=True,
        redelivered=False,
        columns=(
            key("meter_id", description="the utility's meter number"),
            key("enterprise_id", description="unified enterprise id"),
            timestamp("reading_at", nullable=False, description="start of the 15-minute interval"),
            number(
                "load_kw", nullable=False, min=0, max=60_000, unit="kW", description="average active load"
            ),
            number("current_a", min=0, max=120_000, unit="A", description="phase current"),
            number(
                "voltage_v",
                min=0,
                max=12_000,
                unit="V",
                description="supply voltage; 0 means no supply: the meter is offline (its load and current read 0)",
            ),
            updated_at(),
        ),
        tags=("power", "risk_index"),
    ),
    Feed(
        "cable_temperature_readings",
        "power",
        "Temperature of monitored incoming power cables",
        database("power", "cable_temperature_readings"),
        primary_key=("cable_id", "reading_at"),
        event_time="reading_at",
        rows_per_day=115_200,
        partitioned=True,
        redelivered=False,
        columns=(
            key("cable_id"),
            key("enterprise_id"),
            timestamp("reading_at", nullable=False),
            number(
                "temperature_c",
                nullable=False,
                min=-30,
                max=200,
                unit="°C",
                description="cable sheath temperature",
            ),
            updated_at(),
        ),
        tags=("power", "risk_index"),
    ),
    Feed(
        "underground_power_rooms",
        "power",
        "Underground power distribution rooms and their flood protection",
        api("power", "underground_power_rooms"),
        primary_key=("room_id",),
        snapshot=True,
        rows_per_day=240,
        name_noun_zh="地下配电房",
        columns=(
            key("room_id"),
            string("name", nullable=False),
            town(),
            lat(),
            lon(),
            boolean("has_flood_barrier", nullable=False),
            number("water_level_cm", min=0, max=300, unit="cm"),
            string("pump_status", allowed=("running", "stopped", "fault")),
            updated_at(),
        ),
        tags=("power", "flood"),
    ),
)
