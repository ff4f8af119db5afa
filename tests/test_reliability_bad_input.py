"""Bad input through every connector: departments' files (csv, xlsx, parquet), API records and database
rows that are damaged, mis-encoded, oddly shaped, hostile or simply wrong, hand-written and generated.

Every case ends with its rows loaded, quarantined with a reason, or a clean batch failure naming the
feed, batch and rule; every batch reconciles (extracted = loaded + quarantined + rejected), nothing else
in the warehouse is touched, and no case crashes (an exception other than BatchFailed) or hangs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from emergency_dw import catalog
from emergency_dw.connectors import read_file
from emergency_dw.pipeline.ingest import BatchFailed, day_interval, ingest, land_file, validate_and_load
from emergency_dw.simulator.run import truth_dir
from emergency_dw.simulator.writers import drop_dir
from emergency_dw.warehouse import connect

from conftest import DAY, RELIABILITY, serve_simulator
from reliability import batch_rows, create_database, drop_database, postgres_url

pytestmark = pytest.mark.timeout(300)

STAMP = f"{DAY:%Y%m%d}"  # files carry their delivery day; window rules measure from it
INJECTIONS = [
    "'); DROP TABLE raw.schools; --",
    "Robert'); DROP TABLE audit.batches;--",
    '" OR ""="',
    "1; DELETE FROM raw.schools WHERE 1=1",
    "$$; DROP SCHEMA raw CASCADE; $$",
    "\\'; TRUNCATE audit.batches; --",
    "x' UNION SELECT * FROM quarantine.schools --",
]
HUGE = "长" * 1_000_000  # 1 MB of text (3 MB as utf-8)
NEXT_YEAR = f"{DAY.year + 1}-{DAY:%m-%d} 10:00:00"


# ---------------------------------------------------------------- the warehouse and the guarantees
@dataclass
class Target:
    url: str
    root: Path


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(f"bad-{request.param}")
    database = None
    if request.param == "duckdb":
        url = f"duckdb:///{root / 'warehouse.duckdb'}"
    else:
        database = create_database("edw_test_bad")
        url = postgres_url(database)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        yield Target(url, root)
    if database:
        drop_database(database)


def _rows(url: str, sql: str, params: list | tuple = ()) -> list[dict]:
    warehouse = connect(url)
    try:
        return warehouse.query(sql, list(params)).to_pylist()
    finally:
        warehouse.close()


def _audit(url: str, batch_id: str) -> dict | None:
    try:
        rows = _rows(url, "select * from audit.batches where batch_id = ?", [batch_id])
    except Exception:  # noqa: BLE001 - no batch was ever audited in this warehouse yet
        return None
    return rows[0] if rows else None


def settle(target: Target, feed: str, run: Callable[[], object]) -> dict:
    """Run one bad input; check the guarantees; say how it ended (and the audit row, if any)."""
    RELIABILITY["bad inputs tried"] += 1
    try:
        result = run()
    except BatchFailed as exc:
        message = str(exc)
        assert exc.feed == feed and feed in message and exc.batch_id in message and exc.rule in message
        audit = _audit(target.url, exc.batch_id)
        raw = batch_rows(target.url, "raw", feed, exc.batch_id)
        held = batch_rows(target.url, "quarantine", feed, exc.batch_id)
        if exc.rule == "source_readable":  # unreadable: nothing landed; what the batch had before stays
            before = audit is not None and audit["status"] == "loaded"
            assert (raw, held) == ((audit["rows_loaded"], audit["rows_quarantined"]) if before else (0, 0))
        else:
            assert audit["status"] == "failed" and audit["failed_rule"] == exc.rule
            assert audit["rows_loaded"] == audit["rows_quarantined"] == 0 == raw == held
            assert audit["rows_rejected"] == audit["rows_extracted"], "a failed batch's rows are rejected"
        RELIABILITY["bad inputs ending in a clean batch failure"] += 1
        return {"outcome": f"failed:{exc.rule}", "message": message, "batch_id": exc.batch_id}
    audit = _audit(target.url, result.batch_id)
    assert audit is not None and audit["status"] == "loaded"
    raw = batch_rows(target.url, "raw", feed, result.batch_id)
    held = batch_rows(target.url, "quarantine", feed, result.batch_id)
    lost = audit["rows_extracted"] - raw - held - audit["rows_rejected"]
    RELIABILITY["rows lost"] += lost
    assert lost == 0 and raw == audit["rows_loaded"] and held == audit["rows_quarantined"]
    assert (
        audit["rows_extracted"] == audit["rows_loaded"] + audit["rows_quarantined"] + audit["rows_rejected"]
    )
    reasons = _rows(
        target.url, f'select _failed_rules from quarantine."{feed}" where _batch_id = ?', [result.batch_id]
    )
    assert all(json.loads(r["_failed_rules"]) for r in reasons), "every quarantined row says why"
    RELIABILITY["bad inputs ending quarantined" if held else "bad inputs ending loaded"] += 1
    return {
        "outcome": "quarantined" if held else "loaded",
        "batch_id": result.batch_id,
        "loaded": raw,
        "held": held,
        "rules": sorted({rule for r in reasons for rule in json.loads(r["_failed_rules"])}),
    }


def send_file(target: Target, feed: str, path: Path) -> dict:
    """``edw ingest FEED --file PATH``: the department's file, landed and loaded as a batch of its own."""
    RELIABILITY["bad files tried"] += 1
    before = path.read_bytes()
    outcome = settle(target, feed, lambda: validate_and_load(land_file(feed, path)))
    assert path.read_bytes() == before, "the department's file is left as it was"
    return outcome


def _warehouse_fingerprint(url: str) -> dict[str, int]:
    """Every table of the pipeline's schemas with its row count."""
    tables = _rows(
        url,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('raw', 'quarantine', 'audit') and table_type = 'BASE TABLE'",
    )
    return {
        f"{t['table_schema']}.{t['table_name']}": _rows(
            url, f'select count(*) as n from "{t["table_schema"]}"."{t["table_name"]}"'
        )[0]["n"]
        for t in tables
    }


# ---------------------------------------------------------------- good rows to spoil
def clean_rows(simulated: Path, feed_name: str, n: int = 4) -> tuple[list[str], list[dict]]:
    """The first ``n`` rows of the simulated delivery that carry no injected defect, as delivered."""
    feed = catalog.get_feed(feed_name)
    defects = pd.read_parquet(truth_dir(simulated, DAY) / "defects.parquet")
    bad = set(defects.loc[defects["feed"] == feed.name, "record_key"])
    rows: list[dict] = []
    for path in sorted(drop_dir(simulated, feed).glob(feed.connector.pattern)):
        for record in read_file(feed, path).to_pylist():
            key = "|".join(str(record[feed.column(k).header]) for k in feed.primary_key)
            if key not in bad and len(rows) < n:
                rows.append(record)
    return [c.header for c in feed.columns], rows


def write_csv(path: Path, headers: list[str], rows: list[dict], encoding: str = "utf-8") -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else row.get(h) for h in headers])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, sheet: str, grid: list[list], merges: list[str] = ()) -> Path:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in grid:
        worksheet.append(row)
    for cells in merges:
        worksheet.merge_cells(cells)
    workbook.save(path)
    return path


@pytest.fixture(scope="module")
def files(simulated: Path, target: Target) -> Path:
    folder = target.root / "exports"
    folder.mkdir(exist_ok=True)
    return folder


# ---------------------------------------------------------------- files: hand-written corpus
def test_wrong_encodings_fail_the_batch_naming_the_encoding(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "schools")
    gb = write_csv(files / f"schools_gb_{STAMP}.csv", headers, rows, encoding="gb18030")
    outcome = send_file(target, "schools", gb)
    assert outcome["outcome"] == "failed:source_readable" and "not valid utf-8" in outcome["message"]
    headers, rows = clean_rows(simulated, "boiler_inventory")
    utf8 = write_csv(files / f"boiler_inventory_utf8_{STAMP}.csv", headers, rows, encoding="utf-8")
    outcome = send_file(target, "boiler_inventory", utf8)
    assert outcome["outcome"] == "failed:source_readable"
    assert "utf-8 text, not gb18030" in outcome["message"]
    right = write_csv(files / f"boiler_inventory_gb_{STAMP}.csv", headers, rows, encoding="gb18030")
    assert send_file(target, "boiler_inventory", right)["outcome"] == "loaded"


def test_malformed_csv_fails_the_batch_and_says_which_row(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "schools")
    good = write_csv(files / "tmp.csv", headers, rows).read_text(encoding="utf-8").splitlines()
    cases = {
        "unbalanced_quote": [good[0], good[1].replace(",", ',"', 1), *good[2:]],
        "ragged_long": [good[0], good[1] + ",surplus", *good[2:]],
        "ragged_short": [good[0], good[1].split(",")[0], *good[2:]],
    }
    for name, lines in cases.items():
        path = files / f"schools_{name}_{STAMP}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        outcome = send_file(target, "schools", path)
        assert outcome["outcome"] == "failed:source_readable", name
        assert "do not match the header's 9" in outcome["message"], name
    for name, body in {"empty": b"", "blank": b"\n\n  \n", "binary": bytes(range(256)) * 8}.items():
        path = files / f"schools_{name}_{STAMP}.csv"
        path.write_bytes(body)
        assert send_file(target, "schools", path)["outcome"] == "failed:source_readable", name
    header_only = files / f"schools_header_only_{STAMP}.csv"
    header_only.write_text(",".join(headers) + "\n", encoding="utf-8")
    assert send_file(target, "schools", header_only) | {"batch_id": None} == {
        "outcome": "loaded",
        "batch_id": None,
        "loaded": 0,
        "held": 0,
        "rules": [],
    }


def test_a_title_above_the_header_is_skipped_and_no_row_is_lost(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "schools")
    path = write_csv(files / f"schools_titled_{STAMP}.csv", headers, rows)
    path.write_text("苍南县学校名单（2026年11月）\n填报单位：教育局,,,\n" + path.read_text(encoding="utf-8"))
    assert send_file(target, "schools", path)["loaded"] == len(rows)

    headers, rows = clean_rows(simulated, "old_houses")
    grid = [["苍南县老旧房屋安全排查表", *[None] * (len(headers) - 1)], ["填报日期：2026-11-27"], headers]
    grid += [[row[h] for h in headers] for row in rows]
    grid.append(["制表人：张三"])  # a footer note: not a house, but not silently dropped either
    town = headers.index("乡镇代码")
    for row in grid[4:-1]:  # the town merged down the rows it covers, as clerks do
        row[town] = None
    letter = openpyxl.utils.get_column_letter(town + 1)
    merges = [f"A1:{openpyxl.utils.get_column_letter(len(headers))}1", f"{letter}4:{letter}{3 + len(rows)}"]
    path = write_xlsx(files / f"老旧房屋_merged_{STAMP}.xlsx", "房屋", grid, merges)
    outcome = send_file(target, "old_houses", path)
    assert outcome["loaded"] == len(rows) and outcome["held"] == 1, outcome
    loaded = _rows(
        target.url, 'select town_code from raw."old_houses" where _batch_id = ?', [outcome["batch_id"]]
    )
    assert {r["town_code"] for r in loaded} == {rows[0]["乡镇代码"]}, "the merged value fills its cells"
    assert "not_null__updated_at" in outcome["rules"], "the footer is held back, with its reasons"


def test_huge_fields_and_sql_injection_are_stored_verbatim_and_harm_nothing(
    simulated: Path, target: Target, files: Path
):
    headers, rows = clean_rows(simulated, "schools", n=len(INJECTIONS) + 2)
    fingerprint = _warehouse_fingerprint(target.url)
    for i, text in enumerate(INJECTIONS):
        rows[i]["name"] = text
    rows[-2]["name"] = HUGE
    rows[-1]["town_code"] = HUGE  # a code column: not one of the towns' codes
    outcome = send_file(target, "schools", write_csv(files / f"schools_hostile_{STAMP}.csv", headers, rows))
    assert (outcome.get("loaded"), outcome.get("held")) == (len(rows) - 1, 1), outcome
    assert outcome["rules"] == ["in_set__town_code"]
    names = _rows(target.url, 'select name from raw."schools" where _batch_id = ?', [outcome["batch_id"]])
    stored = [r["name"] for r in names]
    assert set(INJECTIONS) <= set(stored), "hostile text is data, stored as sent"
    assert HUGE in stored, "a 1 MB field is stored whole"
    after = _warehouse_fingerprint(target.url)
    changed = {t for t in after if after[t] != fingerprint.get(t)}
    assert set(fingerprint) <= set(after), "no table was dropped"
    assert changed <= {
        "raw.schools",
        "quarantine.schools",
        "audit.batches",
        "audit.batch_attempts",
        "audit.validation_results",
        "audit.watermarks",  # created by the first batch when this test runs alone
    }


def test_unexpected_missing_and_mistyped_columns(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "schools")
    for row in rows:
        row["校长办公室"] = "101室"
    extra = send_file(
        target, "schools", write_csv(files / f"schools_extra_{STAMP}.csv", [*headers, "校长办公室"], rows)
    )
    assert extra["outcome"] == "loaded" and extra["loaded"] == len(rows)
    kept = _rows(target.url, 'select _extra from raw."schools" where _batch_id = ?', [extra["batch_id"]])
    assert all(json.loads(r["_extra"]) == {"校长办公室": "101室"} for r in kept)

    missing = [h for h in headers if h != "town_code"]
    outcome = send_file(target, "schools", write_csv(files / f"schools_missing_{STAMP}.csv", missing, rows))
    assert outcome["outcome"] == "failed:columns_match_catalog" and "town_code" in outcome["message"]

    duplicated = send_file(
        target, "schools", write_csv(files / f"schools_dup_header_{STAMP}.csv", [*headers, "name"], rows)
    )
    assert duplicated["outcome"] == "loaded", "a repeated header is kept as an extra column"

    headers, rows = clean_rows(simulated, "schools")
    rows[0]["students"], rows[1]["is_shelter"], rows[2]["lat"] = "九百", "maybe", "北纬27度"
    rows[3]["updated_at"] = "yesterday"
    outcome = send_file(target, "schools", write_csv(files / f"schools_types_{STAMP}.csv", headers, rows))
    assert outcome["held"] == len(rows) and "values_have_declared_types" in outcome["rules"]
    errors = _rows(
        target.url, 'select _errors from quarantine."schools" where _batch_id = ?', [outcome["batch_id"]]
    )
    text = " ".join(r["_errors"] for r in errors)
    assert "九百" in text and "maybe" in text and "yesterday" in text


def test_a_nul_character_is_quarantined_not_stored_or_crashed_on(
    simulated: Path, target: Target, files: Path
):
    headers, rows = clean_rows(simulated, "schools")
    rows[0]["name"] = "灵溪\x00一小"
    outcome = send_file(target, "schools", write_csv(files / f"schools_nul_{STAMP}.csv", headers, rows))
    assert (outcome["loaded"], outcome["held"]) == (len(rows) - 1, 1)
    held = _rows(
        target.url,
        'select _errors, _record from quarantine."schools" where _batch_id = ?',
        [outcome["batch_id"]],
    )
    assert "NUL character" in held[0]["_errors"]
    assert json.loads(held[0]["_record"])["name"] == "灵溪\\u0000一小", "the record shows where the NUL was"


def test_timestamps_far_from_the_batchs_day_are_quarantined(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "forest_fire_patrols")
    rows[0]["started_at"] = "1970-01-01 08:00:00"
    rows[1]["started_at"] = NEXT_YEAR
    rows[2]["updated_at"] = NEXT_YEAR
    path = write_csv(files / f"forest_fire_patrols_times_{STAMP}.csv", headers, rows)
    outcome = send_file(target, "forest_fire_patrols", path)
    assert (outcome["loaded"], outcome["held"]) == (len(rows) - 3, 3)
    assert {"event_time_in_window", "updated_at_in_window"} <= set(outcome["rules"])

    headers, rows = clean_rows(simulated, "schools")  # reference data may be old, but not from 1970
    rows[0]["updated_at"] = "1970-01-01 00:00:00"
    rows[1]["updated_at"] = "2019-03-01 09:00:00"
    outcome = send_file(target, "schools", write_csv(files / f"schools_times_{STAMP}.csv", headers, rows))
    assert (outcome["loaded"], outcome["held"]) == (len(rows) - 1, 1)
    assert outcome["rules"] == ["updated_at_in_window"]


def test_duplicate_keys_within_and_across_batches(simulated: Path, target: Target, files: Path):
    headers, rows = clean_rows(simulated, "schools")
    within = send_file(
        target, "schools", write_csv(files / f"schools_dupkey_{STAMP}.csv", headers, [*rows, rows[0]])
    )
    assert (within["loaded"], within["held"]) == (len(rows) - 1, 2) and within["rules"] == ["unique_key"]

    first = write_csv(files / f"schools_first_{STAMP}.csv", headers, rows[:2])
    changed = [dict(rows[0], name=rows[0]["name"] + "（新址）"), rows[1]]
    second = write_csv(files / f"schools_second_{STAMP}.csv", headers, changed)
    a = send_file(target, "schools", first)
    b = send_file(target, "schools", second)
    again = send_file(target, "schools", first)  # the same file sent twice is the same batch
    assert a["batch_id"] == again["batch_id"] != b["batch_id"]
    versions = _rows(
        target.url,
        'select _batch_id, name from raw."schools" where school_id = ? and _batch_id in (?, ?)',
        [rows[0]["school_id"], a["batch_id"], b["batch_id"]],
    )
    assert sorted(v["name"] for v in versions) == sorted([rows[0]["name"], changed[0]["name"]]), (
        "each delivery keeps its version of the record, once"
    )


def test_damaged_xlsx_and_parquet_fail_cleanly(simulated: Path, target: Target, files: Path):
    for name, body in {
        f"老旧房屋_garbage_{STAMP}.xlsx": b"PK\x03\x04" + bytes(range(256)) * 4,
        f"老旧房屋_empty_{STAMP}.xlsx": b"",
    }.items():
        (files / name).write_bytes(body)
        assert send_file(target, "old_houses", files / name)["outcome"] == "failed:source_readable", name
    empty_sheet = write_xlsx(files / f"老旧房屋_blank_{STAMP}.xlsx", "房屋", [])
    assert send_file(target, "old_houses", empty_sheet)["outcome"] == "failed:source_readable"
    wrong_sheet = write_xlsx(files / f"老旧房屋_sheet_{STAMP}.xlsx", "Sheet1", [["房屋编号"], ["H1"]])
    outcome = send_file(target, "old_houses", wrong_sheet)
    assert outcome["outcome"] == "failed:source_readable" and "房屋" in outcome["message"]

    feed = catalog.get_feed("industrial_enterprise_catalogue")
    path = sorted(drop_dir(simulated, feed).glob(feed.connector.pattern))[0]
    table = pq.read_table(path).slice(0, 5)
    nested = table.set_column(
        table.column_names.index("annual_output_10k_cny"),
        "annual_output_10k_cny",
        pa.array([[1.0], None, [2.0, 3.0], [], None], pa.list_(pa.float64())),
    )
    pq.write_table(nested, files / f"industrial_enterprises_nested_{STAMP}.parquet")
    outcome = send_file(target, feed.name, files / f"industrial_enterprises_nested_{STAMP}.parquet")
    assert outcome["outcome"] == "quarantined" and "values_have_declared_types" in outcome["rules"]
    (files / f"industrial_enterprises_cut_{STAMP}.parquet").write_bytes(path.read_bytes()[:-100])
    outcome = send_file(target, feed.name, files / f"industrial_enterprises_cut_{STAMP}.parquet")
    assert outcome["outcome"] == "failed:source_readable"


# ---------------------------------------------------------------- files: generated
JUNK = st.sampled_from(
    [
        *INJECTIONS,
        "",
        " ",
        "NULL",
        "None",
        "NaN",
        "inf",
        "-1",
        "１２３",
        "1e309",
        "是",
        "否",
        "1970-01-01 00:00:00",
        NEXT_YEAR,
        "2026-02-30 10:00:00",
        "2026-11-27T10:00:00+08:00",
        "😀",
        "a\x00b",
        "line\nbreak",
        'quote"inside',
        "comma,inside",
        "\ufeff",
    ]
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
CELL = st.one_of(TEXT, JUNK, st.integers().map(str), st.floats().map(str))
GENERATED = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@GENERATED
@given(data=st.data())
def test_generated_csv_files(simulated: Path, target: Target, files: Path, data):
    headers, rows = clean_rows(simulated, "forest_fire_patrols")
    spoiled = []
    for row in rows:
        row = dict(row)
        for header in data.draw(st.lists(st.sampled_from(headers), max_size=4, unique=True)):
            row[header] = data.draw(CELL)
        spoiled.append(row)
    if data.draw(st.booleans()):
        headers = [*headers, data.draw(TEXT.filter(lambda h: h not in headers), label="extra header")]
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8", "gb18030"]))
    try:
        body = write_csv(files / "tmp.csv", headers, spoiled).read_text(encoding="utf-8").encode(encoding)
    except UnicodeEncodeError:
        body = (files / "tmp.csv").read_bytes()
    if data.draw(st.booleans()):  # and sometimes the bytes themselves are damaged
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + data.draw(st.binary(max_size=8)) + body[cut:]
    path = files / f"forest_fire_patrols_gen_{STAMP}.csv"
    path.write_bytes(body)
    send_file(target, "forest_fire_patrols", path)
    RELIABILITY["generated files tried"] += 1


XLSX_CELL = st.one_of(
    TEXT.map(lambda t: ILLEGAL_CHARACTERS_RE.sub("", t)),
    JUNK.map(lambda t: ILLEGAL_CHARACTERS_RE.sub("", t)),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2200, 1, 1)),
)


@GENERATED
@given(data=st.data())
def test_generated_xlsx_files(simulated: Path, target: Target, files: Path, data):
    headers, rows = clean_rows(simulated, "town_incident_reports")
    grid = [[row[h] for h in headers] for row in rows]
    for row in grid:
        for i in data.draw(st.lists(st.integers(0, len(headers) - 1), max_size=4, unique=True)):
            row[i] = data.draw(XLSX_CELL)
    above = data.draw(st.lists(st.lists(XLSX_CELL, max_size=3), max_size=3))
    merges = []
    if data.draw(st.booleans()) and len(grid) > 1:
        column = openpyxl.utils.get_column_letter(data.draw(st.integers(1, len(headers))))
        first = len(above) + 2
        merges.append(f"{column}{first}:{column}{first + 1}")
    path = write_xlsx(
        files / f"苍南县灵溪镇_突发事件报告_gen_{STAMP}.xlsx", "事件", [*above, headers, *grid], merges
    )
    send_file(target, "town_incident_reports", path)
    RELIABILITY["generated files tried"] += 1


@GENERATED
@given(body=st.binary(max_size=2048), suffix=st.sampled_from([".csv", ".xlsx", ".parquet"]))
def test_generated_bytes_as_any_file(target: Target, files: Path, body: bytes, suffix: str):
    path = files / f"schools_bytes_{STAMP}{suffix}"
    path.write_bytes(body)
    outcome = send_file(target, "schools", path)
    assert outcome["outcome"] in (
        "failed:source_readable",
        "failed:columns_match_catalog",
        "loaded",
        "quarantined",
    )
    RELIABILITY["generated files tried"] += 1


# ---------------------------------------------------------------- the API: bad records served for real
HTTP_FEED = "alerts_110"


@pytest.fixture(scope="module")
def api(simulated: Path, target: Target, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("bad-api") / "server.log"
    with serve_simulator(simulated, log, fault_rate=0.0) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_SOURCE_API_URL", server["base"])
        mp.setenv("EDW_SOURCE_API_TOKEN", server["token"])
        mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.01")
        mp.setenv("EDW_HTTP_MAX_ATTEMPTS", "2")
        server["admin"] = lambda plan: httpx.post(
            server["base"] + "/admin/faults",
            json=plan,
            headers={"Authorization": f"Bearer {server['token']}"},
            timeout=5,
        )
        clean = ingest(HTTP_FEED, *day_interval(DAY))
        server["clean"] = clean
        yield server


def serve_records(target: Target, api: dict, records: list) -> dict:
    response = api["admin"]({"feed": HTTP_FEED, "records": records, "times": 1})
    assert response.status_code == 200, response.text
    outcome = settle(target, HTTP_FEED, lambda: ingest(HTTP_FEED, *day_interval(DAY)))
    if outcome["outcome"] in ("loaded", "quarantined"):
        assert outcome["loaded"] + outcome["held"] == api["clean"].rows_extracted + len(records)
    return outcome


def test_bad_api_records_are_quarantined_with_reasons(target: Target, api: dict):
    day = DAY.isoformat()

    def alert(n: int, **changes) -> dict:
        record = {
            "incident_id": f"BAD{n:03d}",
            "channel": "110",
            "event_type_code": "020101",
            "priority": 2,
            "town_code": "330327100",
            "received_at": f"{day}T10:00:00+08:00",
            "lat": 27.5,
            "lon": 120.4,
            "caller_phone": "13800000000",
            "description": "测试",
            "updated_at": f"{day}T10:05:00+08:00",
        }
        return record | changes

    records = [
        alert(1, priority="high"),
        alert(2, received_at="1970-01-01T08:00:00+08:00"),
        alert(3, received_at=f"{DAY.year + 1}-01-01T08:00:00+08:00"),
        alert(4, description={"nested": ["object"]}),
        alert(5, lat=[27.5, 27.6]),
        alert(6, description="a\x00b"),
        alert(7, town_code=None),
        alert(8, unexpected_field="surprise"),
        alert(9, description=HUGE),
        *(alert(10 + i, description=text) for i, text in enumerate(INJECTIONS)),
        alert(1, priority=3),  # the same incident twice
    ]
    outcome = serve_records(target, api, records)
    assert outcome["outcome"] == "quarantined"
    assert {"values_have_declared_types", "event_time_in_window", "not_null__town_code", "unique_key"} <= set(
        outcome["rules"]
    )
    stored = _rows(
        target.url,
        'select description from raw."alerts_110" where _batch_id = ? and incident_id like ?',
        [outcome["batch_id"], "BAD%"],
    )
    assert set(INJECTIONS) | {HUGE} <= {r["description"] for r in stored}


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT | JUNK,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@GENERATED
@given(data=st.data())
def test_generated_api_records(target: Target, api: dict, data):
    headers = [c.header for c in catalog.get_feed(HTTP_FEED).columns]
    records = data.draw(
        st.lists(
            st.dictionaries(st.sampled_from(headers) | TEXT, JSON_VALUE, max_size=len(headers) + 2),
            min_size=1,
            max_size=5,
        )
    )
    serve_records(target, api, records)
    RELIABILITY["generated API pages tried"] += 1


# ---------------------------------------------------------------- the source database: bad rows stored
SQL_FEED = "alerts_120"


@pytest.fixture
def source_db(simulated: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = target.root / "sources.sqlite"
    shutil.copy(simulated / "sql" / "sources.sqlite", path)
    monkeypatch.setenv("EDW_SOURCE_DB_URL", f"sqlite:///{path}")
    return path


def _insert(path: Path, rows: list[dict], raw_sql: list[str] = ()) -> None:
    with sqlite3.connect(path) as conn:
        for row in rows:
            names = ", ".join(f'"{k}"' for k in row)
            conn.execute(
                f"insert into {SQL_FEED} ({names}) values ({', '.join('?' * len(row))})", list(row.values())
            )
        for statement in raw_sql:
            conn.execute(statement)


def _sql_row(n: int, **changes) -> dict:
    row = {
        "incident_id": f"SQLBAD{n:03d}",
        "channel": "120",
        "event_type_code": "030101",
        "priority": 2,
        "town_code": "330327100",
        "received_at": f"{DAY.isoformat()} 10:00:00.000000",
        "lat": 27.5,
        "lon": 120.4,
        "caller_phone": "13900000000",
        "description": "测试",
        "updated_at": f"{DAY.isoformat()} 10:05:00.000000",
    }
    return row | changes


def test_bad_rows_in_a_source_database(target: Target, source_db: Path):
    _insert(
        source_db,
        [
            _sql_row(1, priority="urgent"),  # SQLite keeps text in an integer column
            _sql_row(2, received_at="1970-01-01 08:00:00.000000"),
            _sql_row(3, description="a\x00b"),
            _sql_row(4, description=HUGE),
            *(_sql_row(10 + i, description=text) for i, text in enumerate(INJECTIONS)),
        ],
        ["alter table alerts_120 add column shift_leader text"],
    )
    outcome = settle(target, SQL_FEED, lambda: ingest(SQL_FEED, *day_interval(DAY)))
    assert outcome["outcome"] == "quarantined"
    assert {"values_have_declared_types", "event_time_in_window"} <= set(outcome["rules"])
    stored = {
        r["description"]
        for r in _rows(
            target.url,
            'select description from raw."alerts_120" where _batch_id = ? and incident_id like ?',
            [outcome["batch_id"], "SQLBAD%"],
        )
    }
    assert set(INJECTIONS) | {HUGE} <= stored


def test_unreadable_values_in_a_source_database_fail_the_batch(target: Target, source_db: Path):
    _insert(source_db, [], [f"update {SQL_FEED} set description = cast(x'c328ff' as text) where rowid = 1"])
    with sqlite3.connect(source_db) as conn:
        conn.execute(
            f"update {SQL_FEED} set updated_at = ? where rowid = 1", [f"{DAY.isoformat()} 09:00:00.000000"]
        )
    outcome = settle(target, SQL_FEED, lambda: ingest(SQL_FEED, *day_interval(DAY)))
    assert outcome["outcome"] == "failed:source_readable" and "alerts_120" in outcome["message"]

    with sqlite3.connect(source_db) as conn:
        conn.execute(f"update {SQL_FEED} set description = 'ok' where rowid = 1")
        conn.execute(
            f"insert into {SQL_FEED} (incident_id, received_at, updated_at) values ('SQLBAD099', 'not a time', ?)",
            [f"{DAY.isoformat()} 11:00:00.000000"],
        )
    outcome = settle(target, SQL_FEED, lambda: ingest(SQL_FEED, *day_interval(DAY)))
    assert outcome["outcome"] == "failed:source_readable" and "cannot be read" in outcome["message"]
