"""Commerce Bureau (商务局): its feeds, staged in ``dbt_project/models/staging/swj/``."""

from __future__ import annotations

from ..columns import date, key, number, phone, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "hazardous_chemical_dealers",
        "swj",
        "Licensed hazardous chemical dealers",
        FileDrop(folder="swj/hazardous_chemical_dealers", format="csv", pattern="hazchem_dealers_*.csv"),
        primary_key=("dealer_id",),
        snapshot=True,
        rows_per_day=190,
        name_noun_zh="化工贸易有限公司",
        columns=(
            key("dealer_id"),
            string("name", nullable=False),
            string("licence_no", nullable=False),
            date("licence_expires_on", nullable=False),
            town(),
            number("storage_tonnes", min=0, max=10_000, unit="t"),
            phone("contact_phone"),
            updated_at(),
        ),
        tags=("enterprise", "chemicals"),
    ),
)
