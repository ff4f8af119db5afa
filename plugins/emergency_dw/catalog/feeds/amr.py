"""Market Regulation Bureau (市场监督管理局): its feeds, staged in ``dbt_project/models/staging/amr/``."""

from __future__ import annotations

from ..columns import date, key, person, phone, string, town, updated_at
from ..connections import api, database
from ..model import Feed
from ..references import INDUSTRY_CODES

FEEDS: tuple[Feed, ...] = (
    Feed(
        "enterprise_registry",
        "amr",
        "Registered enterprises (business licences)",
        api("amr", "enterprise_registry", page_size=2000),
        primary_key=("enterprise_id",),
        snapshot=True,
        rows_per_day=16_000,
        columns=(
            key("enterprise_id"),
            string("uscc", nullable=False, description="unified social credit code (18 characters)"),
            string("name", nullable=False, description="registered company name"),
            person("legal_rep_name"),
            phone("legal_rep_phone"),
            town(),
            string("industry_code", allowed=INDUSTRY_CODES + ("other",)),
            date("registered_on", nullable=False),
            string("status", nullable=False, allowed=("operating", "suspended", "deregistered")),
            updated_at(),
        ),
        tags=("enterprise",),
    ),
    Feed(
        "special_equipment",
        "amr",
        "Special equipment (boilers, pressure vessels, lifts, cranes) and inspections due",
        database("amr", "special_equipment"),
        primary_key=("equipment_id",),
        snapshot=True,
        rows_per_day=9_000,
        columns=(
            key("equipment_id"),
            key("enterprise_id"),
            string(
                "equipment_type",
                nullable=False,
                allowed=("boiler", "pressure_vessel", "lift", "crane", "forklift", "pressure_pipeline"),
            ),
            string("registration_no", nullable=False),
            date("last_inspected_on"),
            date("next_inspection_due"),
            string("status", nullable=False, allowed=("in_use", "idle", "scrapped")),
            updated_at(),
        ),
        tags=("enterprise", "risk_index"),
    ),
)
