"""The project's own generic data tests find what they are meant to find, on both warehouses: a key that
is null or repeated (primary_key), and each column that holds nulls, with how many (not_null_columns)."""

from __future__ import annotations

import pytest
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


def _failing_rows(warehouse_url: str, test_call: str, parsed, monkeypatch) -> set[tuple]:
    """The rows the generic test returns (its failures) on ROWS, through ``dbt show``."""
    data, manifest = parsed
    monkeypatch.setenv("EDW_DATA_DIR", str(data))
    with temporary_environment(dbt_environment(warehouse_url)):
        out = dbtRunner(manifest=manifest).invoke(
            [
                "show",
                "--inline",
                "{{ " + test_call + " }}",
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
