"""Big Data Development Administration (大数据发展管理局): its feeds, staged in ``dbt_project/models/staging/dsj/``."""

from __future__ import annotations

from ..columns import date, key, lat, lon, person, phone, string, timestamp, town, updated_at
from ..connections import api, database
from ..model import WORK_ITEM_MAX_AGE_DAYS, Feed

FEEDS: tuple[Feed, ...] = (
    Feed(
        "guardian_codes",
        "dsj",
        "Guardian QR codes posted on hazard sites",
        database("dsj", "guardian_codes"),
        primary_key=("code_id",),
        snapshot=True,
        rows_per_day=31_000,
        columns=(
            key("code_id"),
            string(
                "site_type",
                nullable=False,
                allowed=(
                    "enterprise",
                    "old_house",
                    "geohazard_point",
                    "reservoir",
                    "construction_site",
                    "school",
                    "other",
                ),
            ),
            string("site_ref_id"),
            town(),
            lat(),
            lon(),
            person("guardian_name"),
            phone("guardian_phone"),
            date("issued_on", nullable=False),
            updated_at(),
        ),
        tags=("guardian_code",),
    ),
    Feed(
        "guardian_code_scans",
        "dsj",
        "Scans of guardian codes (patrols, hazard reports)",
        database("dsj", "guardian_code_scans"),
        primary_key=("scan_id",),
        event_time="scanned_at",
        rows_per_day=4_000,
        columns=(
            key("scan_id"),
            key("code_id"),
            timestamp("scanned_at", nullable=False),
            string("scan_type", nullable=False, allowed=("patrol", "report_hazard", "check_in")),
            phone("reporter_phone"),
            lat(),
            lon(),
            updated_at(),
        ),
        tags=("guardian_code",),
    ),
    Feed(
        "grid_tasks",
        "dsj",
        "Tasks sent to grid workers: verify on site, get rectified, close",
        api("dsj", "grid_tasks"),
        primary_key=("task_id",),
        event_time="created_at",
        max_age_days=WORK_ITEM_MAX_AGE_DAYS,  # a task is re-sent at each step until it is closed
        rows_per_day=60,
        time_order=(
            ("created_at", "assigned_at"),
            ("assigned_at", "verified_at"),
            ("verified_at", "rectified_at"),
            ("rectified_at", "closed_at"),
        ),
        columns=(
            key("task_id"),
            string(
                "source",
                nullable=False,
                allowed=("power_warning", "hazard_inspection", "guardian_scan", "citizen_report"),
            ),
            string("source_ref_id"),
            string("enterprise_id"),
            town(),
            string("grid_worker_id"),
            timestamp("created_at", nullable=False),
            timestamp("assigned_at"),
            timestamp("verified_at"),
            timestamp("rectified_at"),
            timestamp("closed_at"),
            string(
                "status",
                nullable=False,
                allowed=(
                    "created",
                    "assigned",
                    "verified",
                    "rectifying",
                    "rectified",
                    "closed",
                    "false_alarm",
                ),
            ),
            updated_at(),
        ),
        tags=("hazard_loop",),
    ),
)
