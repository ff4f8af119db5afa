"""Civil Affairs Bureau (民政局): its feeds, staged in ``dbt_project/models/staging/mzj/``."""

from __future__ import annotations

from ..columns import boolean, integer, key, lat, lon, string, town, updated_at
from ..connections import api
from ..model import Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "shelters",
        "mzj",
        "Emergency shelters and their capacity",
        api("mzj", "shelters"),
        primary_key=("shelter_id",),
        snapshot=True,
        rows_per_day=310,
        name_noun_zh="避灾安置点",
        columns=(
            key("shelter_id"),
            string("name", nullable=False),
            town(),
            lat(),
            lon(),
            string(
                "shelter_type",
                nullable=False,
                allowed=("school", "gymnasium", "community_centre", "purpose_built"),
            ),
            integer("capacity", nullable=False, min=0, max=20_000),
            boolean("is_open", nullable=False),
            integer("occupancy", min=0, max=20_000),
            updated_at(),
        ),
        tags=("shelter",),
    ),
)
