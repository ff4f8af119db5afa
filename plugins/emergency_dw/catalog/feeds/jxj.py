"""Economy and Information Technology Bureau (经济和信息化局): its feeds, staged in ``dbt_project/models/staging/jxj/``."""

from __future__ import annotations

from ..columns import key, number, string, town, updated_at
from ..model import Feed, FileDrop
from ..references import INDUSTRY_CODES

FEEDS: tuple[Feed, ...] = (
    Feed(
        "industrial_enterprise_catalogue",
        "jxj",
        "Industrial enterprises above designated size and their energy use",
        FileDrop(
            folder="jxj/industrial_enterprise_catalogue",
            format="parquet",
            pattern="industrial_enterprises_*.parquet",
        ),
        primary_key=("enterprise_id",),
        snapshot=True,
        rows_per_day=6_800,
        name_noun_zh="实业有限公司",
        columns=(
            key("enterprise_id"),
            string("uscc", nullable=False),
            string("name", nullable=False),
            string("industry_code", nullable=False, allowed=INDUSTRY_CODES),
            number("annual_output_10k_cny", min=0, max=10_000_000, unit="10k CNY"),
            number("energy_use_tce", min=0, max=1_000_000, unit="tce"),
            town(),
            updated_at(),
        ),
        tags=("enterprise",),
    ),
)
