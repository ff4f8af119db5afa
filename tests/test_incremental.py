"""One incremental pattern (README, Backfills, late data and concurrency): every incremental model builds with
the project's strategy `replace_build_dates` (dbt_project/macros/replace_build_dates.sql), declared the same
way, and the strategy does what it says on both warehouses: a build replaces the rows of the dates it
rebuilds and of the keys it rebuilds, leaves every other row, and a build that fails after its delete
leaves the last good rows in place (the delete and the insert are one transaction)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from dbt.cli.main import dbtRunner

from emergency_dw.config import temporary_environment
from emergency_dw.transform import DBT_PROJECT, dbt_environment
from emergency_dw.warehouse import connect

from databases import create_database, drop_database, postgres_url

STRATEGY = "replace_build_dates"


def test_every_incremental_model_replaces_its_build_dates_and_declares_them(manifest: dict):
    """One pattern to learn: no model appends or deletes+inserts by itself, and none deletes in a hook."""
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    macros = {m["name"] for m in manifest["macros"].values() if m["package_name"] == "emergency_dw"}
    incremental = [n for n in models if n["config"]["materialized"] == "incremental"]
    assert {"int_power_readings_sequenced", "fct_incident_response", "fct_enterprise_risk_daily"} <= {
        n["name"] for n in incremental
    }
    problems = []
    for node in incremental:
        name, config = node["name"], node["config"]
        if config.get("incremental_strategy") != STRATEGY:
            problems.append(
                f"{name}: incremental_strategy={config.get('incremental_strategy')!r}, not {STRATEGY!r}"
            )
        meta = config.get("meta", {})
        column = meta.get("build_dates_column")
        if not column or column not in re.sub(r"meta=\{[^}]*\}", "", node["raw_code"]):
            problems.append(f"{name}: meta build_dates_column {column!r} is not a column its SQL names")
        if meta.get("build_dates") not in macros:
            problems.append(
                f"{name}: meta build_dates {meta.get('build_dates')!r} names no macro of the project"
            )
        for hook in config.get("pre-hook", []) + config.get("post-hook", []):
            if "delete" in hook["sql"].lower():
                problems.append(f"{name}: a hook deletes rows (the strategy does): {hook['sql']}")
    for node in models:
        if node["config"]["materialized"] != "incremental" and node["config"].get("incremental_strategy"):
            problems.append(f"{node['name']}: an incremental_strategy on a {node['config']['materialized']}")
    assert not problems, "\n".join(problems)
    assert f"get_incremental_{STRATEGY}_sql" in macros


# A dbt project of one incremental model on the project's strategy: calls (call_id, call_date, n) delivered
# as --vars rows, of which a build selects the dates --vars dates names (null: every date), as the project's
# models select their build dates. call_id is the table's primary key (an enforced contract, as the marts'):
# a row the build would duplicate fails its insert.
PROBE_PROJECT = """\
name: replace_build_dates_probe
version: "1.0.0"
config-version: 2
profile: emergency_dw
model-paths: ["models"]
macro-paths: ["macros"]
flags:
  send_anonymous_usage_stats: false
"""
PROBE_MODEL = """\
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        unique_key=var('unique_key', none),
        on_schema_change='append_new_columns',
        meta={'build_dates': 'probe_dates', 'build_dates_column': 'call_date'},
    )
}}

with delivered as (
    select cast(call_id as varchar) as call_id, cast(call_date as date) as call_date, cast(n as integer) as n
    from (
        values
        {%- for row in var('rows') + [['-', '1900-01-01', 0]] %}
        ('{{ row[0] }}', '{{ row[1] }}', {{ row[2] }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as delivered (call_id, call_date, n)
)

select * from delivered
where call_id <> '-' and {{ in_build_dates('call_date', probe_dates()) }}
"""
PROBE_YAML = """\
models:
  - name: calls
    config:
      contract:
        enforced: true
    columns:
      - name: call_id
        data_type: varchar
        constraints:
          - type: not_null
          - type: primary_key
      - name: call_date
        data_type: date
      - name: n
        data_type: integer
"""
PROBE_DATES = """\
{% macro probe_dates() -%}
    {{ return(var('dates', none)) }}
{%- endmacro %}
"""
D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def probe(request, tmp_path_factory: pytest.TempPathFactory):
    """build(rows, dates, unique_key=None, full_refresh=False) -> succeeded; held() -> the table's rows."""
    root = tmp_path_factory.mktemp(f"probe-{request.param}")
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "macros").mkdir()
    (project / "dbt_project.yml").write_text(PROBE_PROJECT)
    (project / "models" / "calls.sql").write_text(PROBE_MODEL)
    (project / "models" / "calls.yml").write_text(PROBE_YAML)
    (project / "macros" / "probe_dates.sql").write_text(PROBE_DATES)
    for name in ("replace_build_dates.sql", "build_dates.sql"):
        shutil.copy(DBT_PROJECT / "macros" / name, project / "macros" / name)
    database = None
    if request.param == "duckdb":
        url = f"duckdb:///{root / 'warehouse.duckdb'}"
        table = "main.calls"
    else:
        database = create_database("edw_test_incremental")
        url = postgres_url(database)
        table = "public.calls"

    def build(rows, dates, unique_key=None, full_refresh=False) -> bool:
        variables = {"rows": rows, "dates": dates, "unique_key": unique_key}
        args = ["run", "--project-dir", str(project), "--profiles-dir", str(DBT_PROJECT), "--quiet"]
        args += ["--vars", json.dumps(variables)] + (["--full-refresh"] if full_refresh else [])
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root / "data"))
            with temporary_environment(dbt_environment(url)):
                return dbtRunner().invoke(args).success

    def held() -> set[tuple]:
        warehouse = connect(url)
        try:
            rows = warehouse.query(
                f"select call_id, cast(call_date as varchar) as d, n from {table}"
            ).to_pylist()
        finally:
            warehouse.close()
        return {(r["call_id"], r["d"], r["n"]) for r in rows}

    yield build, held
    if database:
        drop_database(database)


FIRST = [["a", D1, 1], ["b", D1, 2], ["c", D2, 3], ["d", D2, 4], ["e", D3, 5]]


def test_a_build_replaces_the_rows_of_the_dates_it_rebuilds_and_leaves_the_others(probe):
    build, held = probe
    assert build(FIRST, None), "the first build creates the table from the model's SQL"
    assert held() == {tuple(r) for r in FIRST}
    # D2 re-delivered: c changed, d gone, f new; D1's rows are delivered again but D1 is not rebuilt
    assert build([["a", D1, 10], ["c", D2, 30], ["f", D2, 6]], [D2])
    assert held() == {("a", D1, 1), ("b", D1, 2), ("c", D2, 30), ("f", D2, 6), ("e", D3, 5)}
    # a date rebuilt without a row left is emptied; no date rebuilt changes nothing
    assert build([], [D3])
    assert build([["a", D1, 99]], [])
    assert held() == {("a", D1, 1), ("b", D1, 2), ("c", D2, 30), ("f", D2, 6)}


def test_a_unique_key_also_replaces_a_row_that_moved_to_a_rebuilt_date(probe):
    build, held = probe
    assert build(FIRST, None, full_refresh=True)
    # call a re-delivered on D2: rebuilding D2 replaces it on D1 too; D1's other rows stay
    assert build([["a", D2, 7], ["c", D2, 3], ["d", D2, 4]], [D2], unique_key="call_id")
    assert held() == {("a", D2, 7), ("b", D1, 2), ("c", D2, 3), ("d", D2, 4), ("e", D3, 5)}


def test_a_build_that_fails_after_its_delete_keeps_the_last_good_rows(probe):
    build, held = probe
    assert build(FIRST, None, full_refresh=True)
    # without the unique key, a moved call a would be held twice: the primary key fails the insert, after
    # the rows of D2 were deleted in the same transaction
    assert not build([["a", D2, 7], ["c", D2, 30]], [D2])
    assert held() == {tuple(r) for r in FIRST}, "the failed build deleted nothing"


def test_every_date_rebuilt_replaces_every_row(probe):
    """None in an incremental build (a table built before it carried _built_at): every date is rebuilt,
    so every row is replaced."""
    build, held = probe
    assert build(FIRST, None, full_refresh=True)
    assert build([["b", D1, 20], ["g", D3, 8]], None)
    assert held() == {("b", D1, 20), ("g", D3, 8)}
