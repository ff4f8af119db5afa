"""Ecology and Environment Bureau (生态环境局): its feeds, staged in ``dbt_project/models/staging/sthjj/``."""

from __future__ import annotations

from ..columns import key, number, string, town, updated_at
from ..model import Feed, FileDrop

FEEDS: tuple[Feed, ...] = (
    Feed(
        "boiler_inventory",
        "sthjj",
        "Boilers registered for emissions control (exported by a legacy system in GB18030)",
        FileDrop(folder="sthjj/boiler_inventory", format="csv", pattern="锅炉清单_*.csv"),
        primary_key=("boiler_id",),
        snapshot=True,
        encoding="gb18030",
        rows_per_day=1_100,
        name_noun_zh="有限公司",
        columns=(
            key("boiler_id", source_name="锅炉编号"),
            key("enterprise_id", source_name="企业编号"),
            string("enterprise_name", nullable=False, source_name="企业名称"),
            string(
                "fuel",
                nullable=False,
                allowed=("燃煤", "燃气", "生物质", "电", "燃油"),
                source_name="燃料类型",
            ),
            number("rated_capacity_tph", min=0, max=200, unit="t/h", source_name="额定蒸发量(吨/小时)"),
            town(source_name="乡镇代码"),
            string("address", source_name="地址"),
            updated_at(source_name="更新时间"),
        ),
        tags=("enterprise", "environment"),
    ),
)
