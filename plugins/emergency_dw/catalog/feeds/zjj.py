"""Housing and Urban-Rural Development Bureau (住房和城乡建设局): its feeds, staged in ``dbt_project/models/staging/zjj/``."""

from __future__ import annotations

from ..columns import integer, key, person, phone, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "old_houses",
        "zjj",
        "Old houses and their safety grade (A-D)",
        FileDrop(folder="zjj/old_houses", format="xlsx", pattern="老旧房屋_*.xlsx", sheet="房屋"),
        primary_key=("house_id",),
        snapshot=True,
        rows_per_day=5_200,
        columns=(
            key("house_id", source_name="房屋编号"),
            string("address", source_name="地址"),
            town(source_name="乡镇代码"),
            integer("built_year", min=1900, max=2026, source_name="建成年份"),
            string(
                "structure",
                allowed=("brick_wood", "brick_concrete", "frame", "other"),
                source_name="结构类型",
            ),
            string("safety_grade", nullable=False, allowed=("A", "B", "C", "D"), source_name="安全等级"),
            integer("occupants", min=0, max=500, source_name="居住人数"),
            person("owner_name", source_name="产权人"),
            phone("owner_phone", source_name="联系电话"),
            updated_at(source_name="更新时间"),
        ),
        tags=("housing",),
    ),
)
