"""Grants follow the relations (DESIGN section 8): on a fresh Postgres database where the roles exist (they are
cluster-wide) but roles.sql was never applied, a plain load and `edw build` run as the database's owner leave
the marts readable by bi_reader and auditor, and the audit trail and masked quarantine views readable by the
auditor, with no grant given by hand. bi_reader still reads nothing outside the marts.

Roles that do not exist are left out of the grants (the build passes, and says how to create them). On DuckDB
there are no roles: the marts' grants are Postgres's, and a DuckDB build grants nothing and says nothing of
grants (dbt-duckdb would warn that it does not support them), exactly as before.

The marts are the public contract (dbt's `access: public`), enforced by dbt: every column typed, every mart
with its primary key declared, as `dbt parse` writes them to the manifest that dbt's tools read."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from emergency_dw import cli, transform
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest, land_file, validate_and_load
from emergency_dw.simulator.run import Simulator
from emergency_dw.transform import DBT_PROJECT, run_dbt
from emergency_dw.warehouse import connect

from conftest import DAY
from databases import create_database, drop_database, postgres_url

ROLES_SQL = Path(__file__).resolve().parents[1] / "plugins" / "emergency_dw" / "warehouse" / "roles.sql"
PASSWORDS = {
    "edw_loader": "loader_password",
    "edw_transformer": "transformer_password",
    "bi_reader": "bi_reader_password",
    "auditor": "auditor_password",
}
FEEDS = ["alerts_110", "alerts_119", "alerts_120", "dispatch_records"]
SCALE = 0.01
PHONE = "13812345678"  # a caller's number, held in quarantine: the auditor must never read it in clear


def _create_roles(passwords: dict[str, str]) -> None:
    """roles.sql applied to a scratch database, then dropped: the roles stay (cluster-wide), no grant or
    schema of roles.sql reaches the database under test."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not installed: roles.sql is a psql script (apt-get install postgresql-client)")
    scratch = create_database("edw_test_grants_roles")
    try:
        command = [psql, postgres_url(scratch), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(ROLES_SQL)]
        for role, variable in PASSWORDS.items():
            command[2:2] = ["-v", f"{variable}={passwords[role]}"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    finally:
        drop_database(scratch)


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    """The four roles, created (or given new passwords) by roles.sql, as an operator would once per cluster."""
    chosen = {role: secrets.token_urlsafe(18) for role in PASSWORDS}
    _create_roles(chosen)
    return chosen


@pytest.fixture(scope="module")
def built(passwords: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """A fresh database, loaded and built as its owner (`postgres`), the way `edw run` does."""
    name = create_database("edw_test_grants")
    root = tmp_path_factory.mktemp("grants") / "data"
    Simulator(root / "sources", scale=SCALE).simulate_day(DAY, feeds=FEEDS)
    url = postgres_url(name)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root))
            mp.setenv("EDW_WAREHOUSE_URL", url)
            mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
            with embedded_sources():
                for feed in FEEDS:
                    ingest(feed, *day_interval(DAY))
            _load_a_file_with_a_bad_row(root, url)
            assert cli.main(["build"]) == 0
        urls = {role: postgres_url(name, role, passwords[role]) for role in PASSWORDS}
        yield {"name": name, "urls": urls, "owner": url, "data": root}
    finally:
        drop_database(name)


def _load_a_file_with_a_bad_row(root: Path, url: str) -> None:
    """The 110 calls of the day before, sent as a file: one good call, one held (a priority out of range)."""
    day = DAY - dt.timedelta(days=1)
    path = root / f"alerts_110_{day:%Y%m%d}.csv"
    header = "incident_id,channel,event_type_code,priority,town_code,received_at,lat,lon,caller_phone,description,updated_at"
    rows = [
        f"F1,110,020101,2,330327100,{day} 10:00:00,27.5,120.4,13987654321,ok,{day} 10:05:00",
        f"F2,110,020101,9,330327100,{day} 11:00:00,27.5,120.4,{PHONE},bad priority,{day} 11:05:00",
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    loaded = validate_and_load(land_file("alerts_110", path), url)
    assert (loaded.rows_loaded, loaded.rows_quarantined) == (1, 1)


def _as(built: dict, role: str, sql: str) -> list[tuple]:
    with psycopg.connect(built["urls"][role], autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def _denied(built: dict, role: str, sql: str) -> bool:
    try:
        _as(built, role, sql)
    except errors.InsufficientPrivilege:
        return True
    return False


def _count(built: dict, relation: str) -> int:
    with psycopg.connect(built["owner"]) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def _readable(built: dict, role: str) -> set[str]:
    """Every table and view ``role`` can select from (USAGE on its schema and SELECT on it)."""
    rows = _as(
        built,
        role,
        "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind in ('r', 'v', 'm', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
        "and has_schema_privilege(n.oid, 'usage') and has_table_privilege(c.oid, 'select')",
    )
    return {r[0] for r in rows}


def _marts(built: dict) -> set[str]:
    with psycopg.connect(built["owner"]) as conn:
        rows = conn.execute(
            "select 'marts.' || tablename from pg_tables where schemaname = 'marts'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_bi_reader_reads_the_marts_just_built_and_nothing_else(built: dict):
    incidents = _count(built, "marts.fct_incident_response")
    assert incidents > 0
    assert _as(built, "bi_reader", "select count(*) from marts.fct_incident_response") == [(incidents,)]
    assert _as(built, "bi_reader", "select count(*) from marts.agg_response_times_daily")[0][0] > 0
    for relation in (
        "raw.alerts_110",
        "quarantine.alerts_110",
        "audit.batches",
        "audit.quarantine_alerts_110",
        "staging.stg_gaj__alerts_110",
        "reference.towns",
    ):
        assert _denied(built, "bi_reader", f"select * from {relation}"), relation
    assert _denied(built, "bi_reader", "delete from marts.fct_incident_response")
    assert _readable(built, "bi_reader") == _marts(built), "every mart, and nothing else"


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_the_auditor_reads_marts_the_audit_trail_and_masked_quarantine(built: dict):
    assert _as(built, "auditor", "select count(*) from marts.fct_incident_response")[0][0] > 0
    assert _as(built, "auditor", "select count(*) from audit.batches") == [(len(FEEDS) + 1,)]
    for table in ("batch_attempts", "validation_results", "watermarks"):
        assert _as(built, "auditor", f"select count(*) from audit.{table}")[0][0] > 0, table
    held = _count(built, "quarantine.alerts_110")
    records = _as(built, "auditor", "select _record from audit.quarantine_alerts_110")
    assert len(records) == held >= 1
    assert all(r[0].get("caller_phone") in ("***", None) for r in records), "personal fields stay masked"
    assert PHONE not in json.dumps(records, default=str)
    for relation in ("raw.alerts_110", "quarantine.alerts_110", "staging.stg_gaj__alerts_110"):
        assert _denied(built, "auditor", f"select * from {relation}"), relation
    readable = _readable(built, "auditor")
    assert _marts(built) | {"audit.batches", "audit.quarantine_alerts_110"} <= readable
    assert all(r.startswith(("marts.", "audit.")) for r in readable), readable


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_a_second_build_keeps_the_grants(built: dict, monkeypatch: pytest.MonkeyPatch):
    """The incremental marts keep their grants (dbt compares them with what is granted), the tables rebuilt
    get theirs again."""
    monkeypatch.setenv("EDW_DATA_DIR", str(built["data"]))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", built["owner"])
    assert cli.main(["build"]) == 0
    assert _readable(built, "bi_reader") == _marts(built)
    assert _as(built, "auditor", "select count(*) from marts.fct_incident_response")[0][0] > 0


DATE_INDEXES = {"fct_enterprise_risk_daily": "risk_date", "fct_incident_response": "received_date"}


def _date_indexes(built: dict) -> dict[str, str]:
    """The marts' indexes on exactly the date column BI tools read them by, by table."""
    with psycopg.connect(built["owner"]) as conn:
        rows = conn.execute(
            "select tablename, indexname, indexdef from pg_indexes where schemaname = 'marts'"
        ).fetchall()
    return {
        table: name for table, name, definition in rows if definition.endswith(f"({DATE_INDEXES.get(table)})")
    }


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_the_marts_read_by_date_are_indexed_even_on_a_warehouse_built_before_the_index(
    built: dict, monkeypatch: pytest.MonkeyPatch
):
    """BI tools read the risk index and the incidents by date (the latest day, the last weeks: reports/
    bi_queries.sql), and those marts grow by 14,355 and thousands of rows a day: on Postgres each has an index
    on that date, which the latest day's queries use, and a warehouse whose table lacks it (built before the
    index was declared: here, dropped) gets it at its next incremental build, without a full refresh."""
    from emergency_dw.reports.bi_queries import bi_queries

    assert set(_date_indexes(built)) == set(DATE_INDEXES)
    queries = {q.name: q.sql for q in bi_queries()}
    with psycopg.connect(built["owner"], autocommit=True) as conn:
        # the test's tables are tiny: whether the index can serve the query, not whether it is cheaper
        conn.execute("set enable_seqscan = off")
        for name, table in (
            ("risk_levels_latest_day", "fct_enterprise_risk_daily"),
            ("slowest_incidents_of_the_day", "fct_incident_response"),
        ):
            plan = json.dumps(conn.execute(f"explain (format json) {queries[name]}").fetchone()[0])
            assert _date_indexes(built)[table] in plan, (name, plan)
        for index in _date_indexes(built).values():
            conn.execute(f'drop index marts."{index}"')
    assert _date_indexes(built) == {}

    monkeypatch.setenv("EDW_DATA_DIR", str(built["data"]))
    run = run_dbt(["build", "--select", " ".join(DATE_INDEXES)], warehouse_url=built["owner"])
    assert run.success, run.error
    assert set(_date_indexes(built)) == set(DATE_INDEXES)
    again = run_dbt(
        ["run", "--select", " ".join(DATE_INDEXES), "--full-refresh"], warehouse_url=built["owner"]
    )
    assert again.success, again.error
    # rebuilt whole (the old table swapped out holds an index too): each has its date index once, beside its key
    assert set(_date_indexes(built)) == set(DATE_INDEXES)
    with psycopg.connect(built["owner"]) as conn:
        counted = conn.execute(
            "select tablename, count(*) from pg_indexes where schemaname = 'marts' "
            "and tablename = any(%s) group by tablename",
            [list(DATE_INDEXES)],
        ).fetchall()
    assert dict(counted) == dict.fromkeys(DATE_INDEXES, 2), counted


def _grants_by_model(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """Each model's schema and `grants` config, as `dbt parse` for ``target`` writes them to the manifest."""
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if target == "duckdb" else postgres_url("postgres")
    parsed = run_dbt(["parse"], warehouse_url=url)
    assert parsed.success, parsed.error
    return _grants_of(json.loads((tmp_path / "data" / "dbt" / "target" / "manifest.json").read_text()))


def _grants_of(manifest: dict) -> dict[str, tuple]:
    return {
        node["name"]: (node["schema"], node["config"]["grants"])
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }


@pytest.mark.parametrize("target", ["postgres", "duckdb"])
def test_the_marts_and_only_they_carry_their_readers_as_dbt_grants(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
):
    if target == "duckdb":  # the session's `dbt parse` for DuckDB (conftest.manifest) is this very parse
        models = _grants_of(request.getfixturevalue("manifest"))
    else:
        models = _grants_by_model(target, tmp_path, monkeypatch)
    granted = {name: grants for name, (_, grants) in models.items() if grants}
    assert set(granted) == {name for name, (schema, _) in models.items() if schema == "marts"}
    assert all(grants == {"select": ["bi_reader", "auditor"]} for grants in granted.values()), granted


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_reader_role_that_does_not_exist_does_not_break_the_build(
    passwords: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
):
    """The marts' readers name a role the cluster does not have: `edw build` passes, the roles that exist
    get their grants, and the build says once which role is missing and how to create the roles."""
    from emergency_dw.warehouse import grants

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    yml = project / "dbt_project.yml"
    text = yml.read_text(encoding="utf-8")
    assert "&marts_readers [bi_reader, auditor]" in text
    yml.write_text(
        text.replace("&marts_readers [bi_reader, auditor]", "&marts_readers [edw_no_such_role, bi_reader]")
    )
    monkeypatch.setattr(transform, "DBT_PROJECT", project)
    monkeypatch.setattr(grants, "DBT_PROJECT_YML", yml)
    assert grants.reader_roles()["marts"] == ("edw_no_such_role", "bi_reader")

    name = create_database("edw_test_grants_missing")
    try:
        url = postgres_url(name)
        monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
        monkeypatch.setenv("COLUMNS", "400")
        assert cli.main(["build"]) == 0, capsys.readouterr().out[-4000:]
        out = " ".join(capsys.readouterr().out.split())
        reader = {"urls": {"bi_reader": postgres_url(name, "bi_reader", passwords["bi_reader"])}}
        assert _as(reader, "bi_reader", "select count(*) from marts.dim_event_type")[0][0] > 0
        warehouse = connect(url)
        try:
            nobody = grants.missing_readers_notice(warehouse, {"marts": ["edw_no_such_role"]})
            assert (
                grants.missing_readers_notice(warehouse, {"marts": ["bi_reader"], "audit": ["auditor"]})
                is None
            )
        finally:
            warehouse.close()
    finally:
        drop_database(name)
    assert out.count("edw_no_such_role do not exist") == 1, out[-4000:]
    told = out.split("edw_no_such_role do not exist")[1].split("Create the roles")[0]
    assert "cannot read marts" in told and "bi_reader" not in told, out[-4000:]
    assert nobody.startswith("No reader role exists in this Postgres cluster (edw_no_such_role)"), nobody
    for notice in (out, nobody):
        assert "-f plugins/emergency_dw/warehouse/roles.sql" in notice and "README" in notice


def test_a_duckdb_build_grants_nothing_and_says_nothing_of_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
):
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    run = run_dbt(
        ["build", "--select", "+dim_event_type", "--indirect-selection", "buildable"],
        warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
    )
    assert run.success, run.error
    out = capfd.readouterr().out
    assert "dim_event_type" in out and "grant" not in out.lower(), out
    assert transform.missing_readers(f"duckdb:///{tmp_path / 'w.duckdb'}") is None


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_every_bi_query_runs_as_bi_reader(built: dict):
    """The BI tools' queries (reports/bi_queries.sql) all run as bi_reader right after a plain build."""
    from emergency_dw.reports.bi_queries import bi_queries

    answered = {q.name: _as(built, "bi_reader", q.sql) for q in bi_queries()}
    assert answered["response_week_by_channel"], "the calls loaded give the headline rows"


def test_the_marts_are_public_and_the_exposures_read_only_public_models(manifest: dict):
    """dbt's own access levels say which relations are a contract: every mart `public`, staging and
    intermediate `protected`, and the BI dashboards (exposures) depend on public models only."""
    models = {k: n for k, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    for node in models.values():
        expected = "public" if node["schema"] == "marts" else "protected"
        assert node["access"] == expected, (node["name"], node["schema"], node["access"])
    for exposure in manifest["exposures"].values():
        for upstream in exposure["depends_on"]["nodes"]:
            assert models[upstream]["access"] == "public", (exposure["name"], upstream)


def _mart_contract_problems(manifest: dict) -> list[str]:
    """What a mart lacks of the contract dbt's tools read: an enforced contract, a data_type on every column,
    a primary key declared as a constraint (dbt's own `primary_key` of the node) whose columns are not null,
    and tests dbt runs on that key (unique and not null; unique_combination for a composite key)."""
    problems = []
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test" and n.get("test_metadata")]
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["schema"] != "marts":
            continue
        name = node["name"]
        if not (node["contract"]["enforced"] and node["config"]["contract"]["enforced"]):
            problems.append(f"{name}: contract not enforced")
        columns = node["columns"].values()
        if not columns:
            problems.append(f"{name}: no columns")
        problems += [f"{name}.{c['name']}: no data_type" for c in columns if not c.get("data_type")]
        declared = [c for k in node["constraints"] if k["type"] == "primary_key" for c in k["columns"]]
        declared += [c["name"] for c in columns if any(k["type"] == "primary_key" for k in c["constraints"])]
        if not declared or sorted(declared) != sorted(node["primary_key"]):
            problems.append(f"{name}: no primary_key constraint (dbt sees {node['primary_key']})")
            continue
        for key in declared:
            if not any(k["type"] == "not_null" for k in node["columns"][key]["constraints"]):
                problems.append(f"{name}.{key}: primary key column without a not_null constraint")
        mine = [
            (t["test_metadata"]["name"], t["test_metadata"]["kwargs"])
            for t in tests
            if t.get("attached_node") == node["unique_id"]
        ]
        not_null = {kw.get("column_name") for test, kw in mine if test == "not_null"}
        not_null |= {c for test, kw in mine if test == "not_null_columns" for c in kw["columns"]}
        if len(declared) == 1:
            unique = ("unique", declared[0]) in {(test, kw.get("column_name")) for test, kw in mine}
        else:
            unique = any(
                test == "unique_combination" and sorted(kw["combination_of_columns"]) == sorted(declared)
                for test, kw in mine
            )
        if not unique or not set(declared) <= not_null:
            problems.append(f"{name}: its primary key {declared} is not tested unique and not null")
    return problems


def test_every_mart_has_an_enforced_contract_typed_columns_and_a_tested_primary_key(manifest: dict):
    """The marts are a contract dbt enforces and its tools can read: a build fails before a mart changes a
    column's name or type, and every mart declares its primary key (BI tools and the dbt docs show it),
    which the build also tests."""
    marts = {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["schema"] == "marts"
    }
    assert marts == {p.stem for p in (DBT_PROJECT / "models" / "marts").rglob("*.sql")}
    assert _mart_contract_problems(manifest) == []
