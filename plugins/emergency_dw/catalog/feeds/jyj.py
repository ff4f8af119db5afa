"""Education Bureau (教育局): its feeds, staged in ``dbt_project/models/staging/jyj/``."""

from __future__ import annotations

from ..columns import boolean, integer, key, lat, lon, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "schools",
        "jyj",
        "Schools and kindergartens",
        FileDrop(folder="jyj/schools", format="csv", pattern="schools_*.csv"),
        primary_key=("school_id",),
        snapshot=True,
        rows_per_day=260,
        name_noun_zh="学校",
        columns=(
            key("school_id"),
            string("name", nullable=False),
            string(
                "school_type",
                nullable=False,
                allowed=("kindergarten", "primary", "junior", "senior", "vocational"),
            ),
            town(),
            lat(),
            lon(),
            integer("students", min=0, max=10_000),
            boolean("is_shelter", nullable=False),
            updated_at(),
        ),
        tags=("shelter",),
    ),
)
