"""The project's own generic data tests find what they are meant to find, on both warehouses: a key that
is null or repeated (primary_key), and each column that holds nulls, with how many (not_null_columns). And
every model's build on Postgres runs in a session with the project's settings (postgres_session_settings)."""

from __future__ import annotations

import pytest
import yaml
from dbt.cli.main import dbtRunner

from emergency_dw.config import temporary_environment
from emergency_dw.transform import DBT_PROJECT, dbt_environment

from databases import create_database, drop_database, postgres_url

ROWS = "(select * from (values (1, null, 'x'), (2, null, null), (2, 3, 'y'), (null, 4, 'z')) as t(a, b, c)) as rows_under_test"


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path_factory.mktemp('dbt-tests') / 'warehouse.duckdb'}"
        return
    database = create_database("edw_test_dbt_tests")
    yield postgres_url(database)
    drop_database(database)


@pytest.fixture(scope="module")
def parsed(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory):
    """The project as `dbt parse` reads it for this warehouse, parsed once for the module's `dbt show`s (each
    parsed it anew before, in a data directory of its own): (data directory, manifest)."""
    data = tmp_path_factory.mktemp("dbt-tests-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(data))
        with temporary_environment(dbt_environment(warehouse_url)):
            out = dbtRunner().invoke(
                ["parse", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT), "--quiet"]
            )
    assert out.success, out.exception
    return data, out.result


def _shown_rows(warehouse_url: str, sql: str, parsed, monkeypatch) -> set[tuple]:
    """The rows of ``dbt show --inline SQL`` on the warehouse."""
    data, manifest = parsed
    monkeypatch.setenv("EDW_DATA_DIR", str(data))
    with temporary_environment(dbt_environment(warehouse_url)):
        out = dbtRunner(manifest=manifest).invoke(
            [
                "show",
                "--inline",
                sql,
                "--limit",
                "100",
                "--project-dir",
                str(DBT_PROJECT),
                "--profiles-dir",
                str(DBT_PROJECT),
                "--quiet",
            ]
        )
    assert out.success, out.exception
    return {tuple(row) for row in out.result.results[0].agate_table.rows}


def _failing_rows(warehouse_url: str, test_call: str, parsed, monkeypatch) -> set[tuple]:
    """The rows the generic test returns (its failures) on ROWS, through ``dbt show``."""
    return _shown_rows(warehouse_url, "{{ " + test_call + " }}", parsed, monkeypatch)


def test_primary_key_fails_on_a_null_and_on_a_repeated_key(warehouse_url, parsed, monkeypatch):
    rows = _failing_rows(
        warehouse_url, f'test_primary_key(model="{ROWS}", column_name="a")', parsed, monkeypatch
    )
    assert {(key, int(n)) for key, n in rows} == {(2, 2), (None, 1)}
    only_null = _failing_rows(
        warehouse_url, f'test_primary_key(model="{ROWS}", column_name="c")', parsed, monkeypatch
    )
    assert {(key, int(n)) for key, n in only_null} == {(None, 1)}, (
        "a null key fails even when it is the only one"
    )


def test_not_null_columns_names_each_column_with_nulls_and_counts_them(warehouse_url, parsed, monkeypatch):
    rows = _failing_rows(
        warehouse_url,
        f"test_not_null_columns(model=\"{ROWS}\", columns=['a', 'b', 'c'])",
        parsed,
        monkeypatch,
    )
    assert {(column, int(n)) for column, n in rows} == {("a", 1), ("b", 2), ("c", 1)}
    none = _failing_rows(
        warehouse_url,
        f"test_not_null_columns(model=\"{ROWS} where a = 1\", columns=['a'])",
        parsed,
        monkeypatch,
    )
    assert none == set()


def test_every_model_builds_on_postgres_in_a_session_with_the_projects_settings(
    warehouse_url, parsed, monkeypatch
):
    """A server's defaults (work_mem 4 MB) make a power model's windows over millions of readings sort on disk:
    each model's pre-hook sets dbt_project.yml's postgres_session_settings on the build's own session."""
    wanted = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"][
        "postgres_session_settings"
    ]
    assert wanted, "dbt_project.yml sets no postgres_session_settings"
    _, manifest = parsed
    models = [node for node in manifest.nodes.values() if node.resource_type == "model"]
    without = [
        m.name for m in models if not any("postgres_session_settings()" in h.sql for h in m.config.pre_hook)
    ]
    assert models and not without, f"models built without the session settings: {without}"
    names = ", ".join(f"'{name}'" for name in wanted)
    applied = (
        "{% set _ = run_query(postgres_session_settings()) %}"
        f"select name, setting, unit, source from pg_settings where name in ({names})"
    )
    if warehouse_url.startswith("duckdb"):
        hook = _shown_rows(
            warehouse_url, "select '{{ postgres_session_settings() | trim }}' as hook", parsed, monkeypatch
        )
        assert hook == {("",)}, "DuckDB's build sets nothing (its bound is the profile's memory_limit)"
        return
    rows = _shown_rows(warehouse_url, applied, parsed, monkeypatch)
    units = {"kB": 1, "8kB": 8, "MB": 1024}
    got = {
        name: (f"{int(setting) * units[unit] // 1024}MB" if unit else setting, source)
        for name, setting, unit, source in rows
    }
    assert got == {name: (str(value), "session") for name, value in wanted.items()}, (
        "the build's session does not run with the project's settings"
    )


# a re-delivered feed's raw rows (key a, town t): the newest load, one two hours before it, one 3 days before
LOADS = (
    "(select a, t, cast(l as timestamp) as _loaded_at from (values "
    "('k1', '330327100', '2026-11-28 00:10:00'), (null, '999', '2026-11-27 22:10:00'), "
    "(null, '998', '2026-11-25 00:10:00'), ('k2', null, '2026-11-28 00:10:00')) as v(a, t, l)) as loads"
)
TOWNS = "(select * from (values ('330327100')) as v(town_code)) as towns"


def test_the_latest_loads_tests_judge_the_rows_loaded_within_a_day_of_the_newest(
    warehouse_url, parsed, monkeypatch
):
    """A null key or an unknown town code in the latest loads fails; the same in a load three days older
    has been judged by the builds of its day, and is not read again."""
    nulls = _failing_rows(
        warehouse_url, f'test_not_null_in_latest_loads(model="{LOADS}", column_name="a")', parsed, monkeypatch
    )
    assert nulls == {(None,)}
    towns = _failing_rows(
        warehouse_url,
        f'test_relationships_in_latest_loads(model="{LOADS}", column_name="t", to="{TOWNS}", field="town_code")',
        parsed,
        monkeypatch,
    )
    assert towns == {("999",)}, (
        "the recent unknown town fails, a null town is not judged, the old one not read"
    )


def test_no_build_tests_a_redelivered_feed_through_its_view_and_each_key_is_tested_on_its_latest_loads(
    manifest: dict,
):
    """A re-delivered feed's staging view ranks every version ever loaded: a data test on it would cost the
    whole history on every build. Its key (unique by the view's construction: _yjj__unit_tests.yml) and town
    codes are tested on the raw table's latest loads instead."""
    from emergency_dw.catalog import all_feeds

    tested: dict[str, set[tuple[str, str]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or "test_metadata" not in node:
            continue
        for parent in node["depends_on"]["nodes"]:
            tested.setdefault(parent, set()).add(
                (node["test_metadata"]["name"], node.get("column_name") or "")
            )
    problems = []
    for feed in all_feeds():
        if not feed.redelivered:
            continue
        view = f"model.emergency_dw.stg_{feed.department}__{feed.name}"
        source = f"source.emergency_dw.{feed.department}.{feed.name}"
        if tested.get(view):
            problems.append(f"{view} is tested: {sorted(tested[view])}")
        for key in feed.primary_key:
            if ("not_null_in_latest_loads", key) not in tested.get(source, set()):
                problems.append(f"{source}: no not_null_in_latest_loads on {key}")
        town = ("relationships_in_latest_loads", "town_code")
        if any(c.name == "town_code" for c in feed.columns) and town not in tested.get(source, set()):
            problems.append(f"{source}: no relationships_in_latest_loads on town_code")
    assert not problems, problems
    assert (
        "unit_test.emergency_dw.stg_yjj__rescuer_positions.a_redelivered_feed_keeps_one_row_per_key_the_latest_version"
        in manifest["unit_tests"]
    )
