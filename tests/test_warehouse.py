"""The warehouse backends (DuckDB on a temporary file, Postgres on a fresh database) behind one interface."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from emergency_dw.warehouse import ColumnSpec, Warehouse, connect, quote_ident
from emergency_dw.warehouse.postgres_backend import to_dollar_placeholders

from conftest import POSTGRES_URL

BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

EVENTS = [
    ColumnSpec("batch_id", "string", nullable=False),
    ColumnSpec("event_id", "integer", nullable=False),
    ColumnSpec("name", "string"),
    ColumnSpec("score", "float"),
    ColumnSpec("active", "boolean"),
    ColumnSpec("day", "date"),
    ColumnSpec("at", "timestamp"),
    ColumnSpec("payload", "json"),
]
KEY = ("batch_id", "event_id")
UTC = dt.UTC
EVIL = "x'; drop table events; --"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh database for this module, dropped at the end."""
    name = f"edw_test_wh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(POSTGRES_URL)._replace(path="/" + name).geturl()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    warehouse = connect(url)
    assert warehouse.dialect == request.param
    yield warehouse
    warehouse.close()


@pytest.fixture
def schema(wh: Warehouse) -> str:
    """A schema of its own for each test (the Postgres database is shared by the module)."""
    name = f"s_{uuid.uuid4().hex[:10]}"
    wh.ensure_schema(name)
    return name


@pytest.fixture
def events(wh: Warehouse, schema: str) -> str:
    assert wh.ensure_table(schema, "events", EVENTS, primary_key=KEY) == []
    return "events"


def batch(batch_id: str, n: int = 3) -> pa.Table:
    """``n`` rows of every type; the last row's nullable columns are all null."""
    rows = [
        {
            "batch_id": batch_id,
            "event_id": i,
            "name": f"火警 {batch_id}-{i}",
            "score": i + 0.25,
            "active": i % 2 == 0,
            "day": dt.date(2026, 11, 27) + dt.timedelta(days=i),
            "at": dt.datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=UTC) + dt.timedelta(hours=i),
            "payload": json.dumps({"i": i, "地区": "东城"}, ensure_ascii=False),
        }
        for i in range(n)
    ]
    rows[-1].update(name=None, score=None, active=None, day=None, at=None, payload=None)
    schema = pa.schema(
        [
            ("batch_id", pa.string()),
            ("event_id", pa.int64()),
            ("name", pa.string()),
            ("score", pa.float64()),
            ("active", pa.bool_()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("payload", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def table_rows(wh: Warehouse, schema: str, table: str = "events") -> list[dict]:
    return wh.query(
        f"SELECT * FROM {quote_ident(schema)}.{quote_ident(table)} ORDER BY batch_id, event_id"
    ).to_pylist()


def checksum(wh: Warehouse, schema: str, table: str = "events") -> str:
    return hashlib.sha256(repr(table_rows(wh, schema, table)).encode()).hexdigest()


def replace(wh: Warehouse, schema: str, data: pa.Table, table: str = "events") -> int:
    with wh.transaction() as tx:
        return tx.replace_rows(schema, table, "batch_id", data["batch_id"][0].as_py(), data)


def test_create_schema_and_table(wh: Warehouse, schema: str, events: str) -> None:
    wh.ensure_schema(schema)  # again: a no-op
    assert wh.ensure_table(schema, events, EVENTS, primary_key=KEY) == []
    columns = wh.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
        " ORDER BY ordinal_position",
        [schema, events],
    )
    assert columns["column_name"].to_pylist() == [c.name for c in EVENTS]
    assert table_rows(wh, schema) == []


def test_primary_key_violation_leaves_table_unchanged(wh: Warehouse, schema: str, events: str) -> None:
    replace(wh, schema, batch("A"))
    before = checksum(wh, schema)
    with pytest.raises(Exception), wh.transaction() as tx:  # noqa: B017 - each driver has its own class
        tx.append(schema, events, batch("B"))
        tx.append(schema, events, batch("A"))
    assert checksum(wh, schema) == before


def test_replace_rows_is_idempotent(wh: Warehouse, schema: str, events: str) -> None:
    data = batch("A", 5)
    assert replace(wh, schema, data) == 5
    first = checksum(wh, schema)
    assert replace(wh, schema, data) == 5
    assert len(table_rows(wh, schema)) == 5
    assert checksum(wh, schema) == first


def test_replace_rows_of_one_batch_leaves_the_others(wh: Warehouse, schema: str, events: str) -> None:
    replace(wh, schema, batch("A", 4))
    a_rows = [r for r in table_rows(wh, schema) if r["batch_id"] == "A"]
    replace(wh, schema, batch("B", 2))
    replace(wh, schema, batch("B", 3))
    rows = table_rows(wh, schema)
    assert [r for r in rows if r["batch_id"] == "A"] == a_rows
    assert [r["event_id"] for r in rows if r["batch_id"] == "B"] == [0, 1, 2]


def test_failure_inside_transaction_changes_nothing(wh: Warehouse, schema: str, events: str) -> None:
    replace(wh, schema, batch("A", 4))
    before = checksum(wh, schema)
    with pytest.raises(RuntimeError, match="boom"), wh.transaction() as tx:
        assert tx.replace_rows(schema, events, "batch_id", "A", batch("A", 1)) == 1
        tx.append(schema, events, batch("C", 2))
        assert len(wh.query(f"SELECT * FROM {quote_ident(schema)}.events")) == 3  # seen inside
        raise RuntimeError("boom")
    assert checksum(wh, schema) == before
    # The warehouse is usable afterwards.
    assert replace(wh, schema, batch("C", 2)) == 2


def test_ensure_table_adds_a_nullable_column(wh: Warehouse, schema: str, events: str) -> None:
    replace(wh, schema, batch("A", 2))
    wider = [*EVENTS, ColumnSpec("severity", "integer"), ColumnSpec("note", "string", nullable=False)]
    assert wh.ensure_table(schema, events, wider, primary_key=KEY) == ["severity", "note"]
    assert wh.ensure_table(schema, events, wider, primary_key=KEY) == []
    assert {(r["severity"], r["note"]) for r in table_rows(wh, schema)} == {(None, None)}
    # data may hold a subset of the columns, in another order: it is inserted by name
    subset = pa.table(
        {"severity": pa.array([3], pa.int64()), "event_id": pa.array([0], pa.int64()), "batch_id": ["B"]}
    )
    assert replace(wh, schema, subset) == 1
    row = [r for r in table_rows(wh, schema) if r["batch_id"] == "B"][0]
    assert row["severity"] == 3 and row["event_id"] == 0 and row["name"] is None


def test_unknown_columns_are_refused(wh: Warehouse, schema: str, events: str) -> None:
    data = batch("A").append_column("surprise", pa.array([1, 2, 3]))
    with pytest.raises(ValueError, match="surprise"), wh.transaction() as tx:
        tx.append(schema, events, data)
    with pytest.raises(ValueError, match="does not exist"), wh.transaction() as tx:
        tx.append(schema, "nowhere", batch("A"))


def test_types_round_trip(wh: Warehouse, schema: str, events: str) -> None:
    data = batch("A", 4)
    replace(wh, schema, data)
    out = wh.query(f"SELECT * FROM {quote_ident(schema)}.events ORDER BY event_id")
    expected_types = {
        "batch_id": pa.string(),
        "event_id": pa.int64(),
        "name": pa.string(),
        "score": pa.float64(),
        "active": pa.bool_(),
        "day": pa.date32(),
        "at": pa.timestamp("us", tz="UTC"),
        "payload": pa.string(),
    }
    assert {f.name: f.type for f in out.schema} == expected_types
    got, want = out.to_pylist(), data.to_pylist()
    for g, w in zip(got, want, strict=True):
        payload_g, payload_w = g.pop("payload"), w.pop("payload")
        assert g == w
        assert g["at"] is None or g["at"].utcoffset() == dt.timedelta(0)
        assert (payload_g and json.loads(payload_g)) == (payload_w and json.loads(payload_w))
    assert got[0]["name"] == "火警 A-0"


def test_query_parameters_and_hostile_values(wh: Warehouse, schema: str, events: str) -> None:
    table = f"{quote_ident(schema)}.events"
    hostile = batch("A", 2).set_column(2, "name", pa.array([EVIL, "plain"]))
    replace(wh, schema, hostile)
    with wh.transaction() as tx:
        tx.execute(f"INSERT INTO {table} (batch_id, event_id, name) VALUES (?, ?, ?)", ["B", 7, EVIL])
    found = wh.query(
        f"SELECT batch_id, event_id, name, '?' AS mark FROM {table} WHERE name = ? AND event_id >= ? ORDER BY batch_id",
        [EVIL, 0],
    )
    assert found.to_pylist() == [
        {"batch_id": "A", "event_id": 0, "name": EVIL, "mark": "?"},
        {"batch_id": "B", "event_id": 7, "name": EVIL, "mark": "?"},
    ]
    with wh.transaction() as tx:
        tx.replace_rows(schema, "events", "batch_id", EVIL, batch("Z", 1))  # a key value, never SQL
    assert len(table_rows(wh, schema)) == 4


def test_odd_identifiers_are_quoted(wh: Warehouse) -> None:
    schema, table = f'odd "schema" {uuid.uuid4().hex[:6]}', "t; drop table x; --"
    wh.ensure_schema(schema)
    wh.ensure_table(schema, table, [ColumnSpec('col "a"', "string"), ColumnSpec("batch_id", "string")])
    with wh.transaction() as tx:
        tx.replace_rows(schema, table, "batch_id", "b", pa.table({'col "a"': ["v"], "batch_id": ["b"]}))
    out = wh.query(f"SELECT * FROM {quote_ident(schema)}.{quote_ident(table)}")
    assert out.to_pylist() == [{'col "a"': "v", "batch_id": "b"}]


@pytest.mark.slow
def test_bulk_insert_of_a_million_rows(wh: Warehouse, schema: str, capsys: pytest.CaptureFixture) -> None:
    n = 1_000_000
    columns = [ColumnSpec("batch_id", "string"), ColumnSpec("id", "integer"), ColumnSpec("value", "float")]
    wh.ensure_table(schema, "big", columns)
    data = pa.table(
        {
            "batch_id": pa.array(["big"] * n),
            "id": pa.array(range(n), pa.int64()),
            "value": pa.array([i * 0.5 for i in range(n)], pa.float64()),
        }
    )
    start = time.perf_counter()
    with wh.transaction() as tx:
        assert tx.replace_rows(schema, "big", "batch_id", "big", data) == n
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{wh.dialect}: bulk insert of {n:,} rows took {elapsed:.2f} s")
    counts = wh.query(
        f"SELECT count(*) AS n, CAST(sum(id) AS BIGINT) AS s FROM {quote_ident(schema)}.big"
    ).to_pylist()
    assert counts[0]["n"] == n and counts[0]["s"] == n * (n - 1) // 2


def test_connect_refuses_other_urls() -> None:
    with pytest.raises(ValueError, match="EDW_WAREHOUSE_URL") as info:
        connect("mysql://x")
    assert "duckdb:///" in str(info.value) and "postgresql://" in str(info.value)


def test_memory_duckdb_url() -> None:
    wh = connect("duckdb:///:memory:")
    assert wh.query("SELECT current_setting('TimeZone') AS tz").to_pylist() == [{"tz": "UTC"}]
    wh.close()


def test_question_marks_become_dollar_placeholders() -> None:
    assert to_dollar_placeholders("SELECT ?, '?''?', \"a?\" -- ?\n, ? /* ? */ , ?") == (
        "SELECT $1, '?''?', \"a?\" -- ?\n, $2 /* ? */ , $3"
    )


def test_the_embedded_warehouse_is_bounded_by_the_configured_memory_and_spills_beside_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emergency_dw.transform import dbt_environment

    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("EDW_DUCKDB_THREADS", "1")
    url = f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    wh = connect(url)
    try:
        limit, threads, temp = (
            wh.query(
                "select current_setting('memory_limit') as m, current_setting('threads') as t,"
                " current_setting('temp_directory') as d"
            )
            .to_pylist()[0]
            .values()
        )
    finally:
        wh.close()
    assert limit.replace(" ", "") in ("667.5MiB", "700.0MB", "700MB")  # DuckDB shows it in MiB
    assert int(threads) == 1
    assert Path(temp) == tmp_path / "data" / "warehouse.duckdb.tmp"  # spills beside the file
    env = dbt_environment(url)  # dbt's profile gets the same bounds
    assert env["EDW_DUCKDB_MEMORY_LIMIT"] == "700MB"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("EDW_DUCKDB_MEMORY_LIMIT", "lots", "memory_limit"),
        ("EDW_DUCKDB_THREADS", "two", "EDW_DUCKDB_THREADS"),
    ],
)
def test_a_bad_duckdb_bound_is_refused_with_a_message_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=named):
        connect(f"duckdb:///{tmp_path / 'w.duckdb'}")
