"""The 18 towns of Cangnan county (苍南县18个乡镇): their feeds, staged in ``dbt_project/models/staging/towns/``."""

from __future__ import annotations

from ..columns import integer, key, number, person, string, timestamp, town, updated_at
from ..model import Feed, FileDrop
from ..references import EVENT_TYPE_CODES

FEEDS: tuple[Feed, ...] = (
    Feed(
        "town_incident_reports",
        "towns",
        "Daily incident reports from each town (one workbook per town per day)",
        FileDrop(
            folder="towns/town_incident_reports",
            format="xlsx",
            pattern="*_突发事件报告_*.xlsx",
            sheet="事件",
            per_town=True,
        ),
        primary_key=("report_id",),
        event_time="reported_at",
        rows_per_day=54,
        columns=(
            key("report_id", source_name="报告编号"),
            town(source_name="乡镇代码"),
            timestamp("reported_at", nullable=False, source_name="上报时间"),
            string("event_type_code", nullable=False, allowed=EVENT_TYPE_CODES, source_name="事件类型代码"),
            string("location", source_name="地点"),
            integer("casualties", min=0, max=1_000, source_name="伤亡人数"),
            number("economic_loss_10k_cny", min=0, max=100_000, unit="10k CNY", source_name="经济损失(万元)"),
            person("reporter_name", source_name="上报人"),
            string(
                "status", nullable=False, allowed=("reported", "handling", "resolved"), source_name="处置状态"
            ),
            updated_at(source_name="更新时间"),
        ),
        tags=("towns", "response"),
    ),
)
