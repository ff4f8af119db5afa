"""The warehouse's roles (DESIGN section 8), applied with roles.sql to a fresh Postgres database and proved
by connecting as each: edw_loader loads, edw_transformer builds marts, bi_reader reads marts only, and
the auditor reads marts, the audit trail and quarantine with personal fields masked, never in clear."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import openpyxl
import psycopg
import pytest
from psycopg import errors

from emergency_dw.pipeline.ingest import land_file, validate_and_load

from conftest import DAY
from reliability import create_database, drop_database, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

ROLES_SQL = Path(__file__).resolve().parents[1] / "plugins" / "emergency_dw" / "warehouse" / "roles.sql"
ROLES = {
    "edw_loader": "loader_password",
    "edw_transformer": "transformer_password",
    "bi_reader": "bi_reader_password",
    "auditor": "auditor_password",
}
PHONES = ["13812345678", "13987654321", "17700001111"]  # the callers' numbers: personal data
OWNER_PHONE = "15566667777"
STAMP = f"{DAY:%Y%m%d}"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    """A fresh database with roles.sql applied (twice: it is idempotent), and a batch loaded as edw_loader."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed: roles.sql is a psql script")
    name = create_database("edw_test_roles")
    passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
    command = [psql, postgres_url(name), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(ROLES_SQL)]
    for role, variable in ROLES.items():
        command[2:2] = ["-v", f"{variable}={passwords[role]}"]
    try:
        for _ in range(2):
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
        urls = {role: postgres_url(name, role, passwords[role]) for role in ROLES}
        root = tmp_path_factory.mktemp("roles")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root / "data"))
            mp.setenv("EDW_WAREHOUSE_URL", urls["edw_loader"])
            batches = _load_as_loader(root, urls["edw_loader"])
        built = {"name": name, "urls": urls, "batches": batches}
        _build_as_transformer(built)
        yield built
    finally:
        drop_database(name)


def _load_as_loader(root: Path, url: str) -> dict:
    """Alerts with callers' phones (one good, three held back) and a house register with an owner's phone."""
    alerts = root / f"alerts_110_{STAMP}.csv"
    header = "incident_id,channel,event_type_code,priority,town_code,received_at,lat,lon,caller_phone,description,updated_at"
    rows = [
        f"A1,110,020101,2,330327100,{DAY} 10:00:00,27.5,120.4,{PHONES[0]},ok,{DAY} 10:05:00",
        f"A2,110,020101,9,330327100,{DAY} 11:00:00,27.5,120.4,{PHONES[1]},bad priority,{DAY} 11:05:00",
        f"A3,110,020101,2,330327100,{DAY} 12:00:00,27.5,120.4,{PHONES[2]}\x00,a NUL in the phone,{DAY} 12:05:00",
        f"A4,110,020101,2,,{DAY} 13:00:00,27.5,120.4,,no town and no phone,{DAY} 13:05:00",
    ]
    alerts.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    first = validate_and_load(land_file("alerts_110", alerts), url)
    assert (first.rows_loaded, first.rows_quarantined) == (1, 3)

    houses = root / f"老旧房屋_{STAMP}.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "房屋"
    sheet.append(
        [
            "房屋编号",
            "地址",
            "乡镇代码",
            "建成年份",
            "结构类型",
            "安全等级",
            "居住人数",
            "产权人",
            "联系电话",
            "更新时间",
        ]
    )
    sheet.append(["H1", "灵溪镇", "330327100", 1980, "brick", "Z", 3, "张三", OWNER_PHONE, f"{DAY} 09:00:00"])
    workbook.save(houses)
    second = validate_and_load(land_file("old_houses", houses), url)
    assert second.rows_quarantined == 1
    return {"alerts_110": first.batch_id, "old_houses": second.batch_id}


def _build_as_transformer(warehouse: dict) -> None:
    """What dbt does as edw_transformer: a staging view over raw, a mart table from it."""
    _as(
        warehouse,
        "edw_transformer",
        "create view staging.stg_alerts as select incident_id, town_code from raw.alerts_110",
    )
    _as(
        warehouse,
        "edw_transformer",
        "create table marts.fct_alert_counts as select town_code, count(*) as alerts from staging.stg_alerts group by 1",
    )


def _as(warehouse: dict, role: str, sql: str) -> list[tuple]:
    with psycopg.connect(warehouse["urls"][role], autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def _denied(warehouse: dict, role: str, sql: str) -> bool:
    try:
        _as(warehouse, role, sql)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_the_loader_wrote_raw_quarantine_and_audit_and_owns_them(warehouse: dict):
    assert _as(warehouse, "edw_loader", 'select count(*) from raw."alerts_110"') == [(1,)]
    assert _as(warehouse, "edw_loader", 'select count(*) from quarantine."alerts_110"') == [(3,)]
    owners = _as(
        warehouse,
        "edw_loader",
        "select distinct tableowner from pg_tables where schemaname in ('raw', 'quarantine', 'audit')",
    )
    assert owners == [("edw_loader",)]
    assert _denied(warehouse, "edw_loader", "create table marts.loader_was_here (x int)")
    assert _denied(warehouse, "edw_loader", "create schema loader_schema")


def test_the_transformer_reads_raw_and_builds_marts(warehouse: dict):
    assert _as(warehouse, "edw_transformer", "select count(*) from raw.alerts_110") == [(1,)]
    assert _as(warehouse, "edw_transformer", "select alerts from marts.fct_alert_counts") == [(1,)]
    assert _as(warehouse, "edw_transformer", "select count(*) from audit.batches") == [(2,)]
    assert _denied(
        warehouse,
        "edw_transformer",
        "insert into raw.alerts_110 (_batch_id, _row, _loaded_at) values ('x', 0, now())",
    )
    assert _denied(warehouse, "edw_transformer", "delete from audit.batches")


def test_the_bi_reader_selects_marts_only(warehouse: dict):
    assert _as(warehouse, "bi_reader", "select count(*) from marts.fct_alert_counts") == [(1,)]
    for relation in (
        "raw.alerts_110",
        "quarantine.alerts_110",
        "audit.batches",
        "audit.quarantine_alerts_110",
        "staging.stg_alerts",
    ):
        assert _denied(warehouse, "bi_reader", f"select * from {relation}"), relation
    assert _denied(warehouse, "bi_reader", "create table marts.mine (x int)")
    assert _denied(warehouse, "bi_reader", "delete from marts.fct_alert_counts")


def test_the_auditor_sees_marts_audit_and_masked_quarantine_never_a_clear_phone(warehouse: dict):
    assert _as(warehouse, "auditor", "select count(*) from marts.fct_alert_counts") == [(1,)]
    assert _as(warehouse, "auditor", "select count(*) from audit.batches") == [(2,)]
    for relation in ("raw.alerts_110", "quarantine.alerts_110", "quarantine.old_houses", "raw.old_houses"):
        assert _denied(warehouse, "auditor", f"select * from {relation}"), relation

    held = _as(
        warehouse,
        "auditor",
        "select _row, _failed_rules, _errors, _record from audit.quarantine_alerts_110 order by _row",
    )
    assert [row[0] for row in held] == [1, 2, 3], "every quarantined row, with its reasons"
    records = {row[0]: row[3] for row in held}
    assert records[1]["caller_phone"] == records[2]["caller_phone"] == "***"
    assert records[3]["caller_phone"] is None, "a missing phone stays visibly missing"
    assert records[1]["priority"] == "9" and records[1]["description"] == "bad priority"
    assert "range__priority" in held[0][1] and "not_null__town_code" in held[2][1]
    assert held[1][2] == ["caller_phone: *** (personal data masked)"], (
        "the reason names the field, not the value"
    )

    houses = _as(warehouse, "auditor", "select _record from audit.quarantine_old_houses")
    assert houses[0][0]["联系电话"] == "***" and houses[0][0]["产权人"] == "***"
    assert houses[0][0]["安全等级"] == "Z", "what is not personal stays readable"

    readable = _as(
        warehouse,
        "auditor",
        "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind in ('r', 'v', 'm', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
        "and has_schema_privilege(n.oid, 'usage') and has_table_privilege(c.oid, 'select')",
    )
    names = {r[0] for r in readable}
    assert {"audit.batches", "audit.quarantine_alerts_110", "marts.fct_alert_counts"} <= names
    assert not any(n.startswith(("raw.", "quarantine.", "staging.")) for n in names), names
    for (relation,) in readable:
        dump = json.dumps(_as(warehouse, "auditor", f"select * from {relation}"), default=str)
        for phone in [*PHONES, OWNER_PHONE, "张三"]:
            assert phone not in dump, f"{phone} readable by the auditor in {relation}"


def test_dbt_builds_as_the_transformer_while_loads_run_as_the_loader(warehouse: dict, tmp_path, monkeypatch):
    """The compose stack's split: loads as edw_loader (EDW_WAREHOUSE_URL), dbt as edw_transformer
    (EDW_TRANSFORM_WAREHOUSE_URL). dbt creates the staging view as the transformer; as the loader (before,
    the only URL dbt had) it is refused, since roles.sql lets only the transformer create in staging."""
    from emergency_dw.transform import run_dbt

    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", warehouse["urls"]["edw_loader"])
    monkeypatch.setenv("EDW_TRANSFORM_WAREHOUSE_URL", warehouse["urls"]["edw_transformer"])
    run = run_dbt(["run", "--select", "stg_gaj__alerts_110"])
    assert run.success, run.error or run.results
    owner = _as(
        warehouse, "edw_transformer", "select viewowner from pg_views where viewname = 'stg_gaj__alerts_110'"
    )
    assert owner == [("edw_transformer",)]
    monkeypatch.delenv("EDW_TRANSFORM_WAREHOUSE_URL")
    as_loader = run_dbt(["run", "--select", "stg_gaj__alerts_110"])
    assert not as_loader.success
