"""Ingestion end to end on DuckDB and on Postgres: every feed through its real connector, quarantine
against the simulator's ground truth, reconciliation, idempotent reruns, critical failures."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from emergency_dw import catalog
from emergency_dw.catalog import Feed
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import BatchFailed, day_interval, ingest, land_file, validate_and_load
from emergency_dw.pipeline.suites import row_count_rule
from emergency_dw.simulator.run import Simulator, truth_dir
from emergency_dw.warehouse import connect

from conftest import DAY, RELIABILITY, DayWarehouse, ingest_and_build_day
from databases import create_database, drop_database, postgres_url

VOLATILE = {
    "landed_path",  # each attempt lands in a file of its own (same content, same checksum)
    "_loaded_at",
    "_quarantined_at",
    "started_at",
    "finished_at",
    "extract_seconds",
    "validate_seconds",
    "load_seconds",
    "validated_at",
    "updated_at_wm",
}


def _ingest_all(feeds: list[Feed]) -> dict:
    results = {}
    start, end = day_interval(DAY)
    for feed in feeds:
        try:
            results[feed.name] = ingest(feed.name, start, end)
        except BatchFailed as exc:
            results[feed.name] = exc
    return results


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def ingested(request, simulated: Path, tmp_path_factory: pytest.TempPathFactory):
    """Every feed of the simulated day ingested into a fresh warehouse of each kind, then `dbt build` of the
    whole project (conftest.ingest_and_build_day). On DuckDB, the session's (test_marts_complete reads a copy
    of it made before the reruns below)."""
    if request.param == "duckdb":
        yield request.getfixturevalue("day_warehouse_to_write")
        return
    database = create_database("edw_test_ingest")
    try:
        yield ingest_and_build_day(
            simulated, tmp_path_factory.mktemp("ingest-postgres"), postgres_url(database)
        )
    finally:
        drop_database(database)


def _query(url: str, sql: str, params=()) -> list[dict]:
    warehouse = connect(url)
    try:
        return warehouse.query(sql, list(params)).to_pylist()
    finally:
        warehouse.close()


def test_every_feed_ingests_the_day_through_its_connector(ingested: DayWarehouse):
    failed = {name: str(r) for name, r in ingested.results.items() if isinstance(r, BatchFailed)}
    assert not failed
    for feed in catalog.FEEDS:
        result = ingested.results[feed.name]
        count = _query(
            ingested.url,
            f'select count(*) as n from raw."{feed.name}" where _batch_id = ?',
            [result.batch_id],
        )[0]["n"]
        assert count == result.rows_loaded, feed.name
    manifest = json.loads(
        (ingested.root / "data" / "sources" / "truth" / DAY.isoformat() / "manifest.json").read_text()
    )
    for name, info in manifest["feeds"].items():
        assert ingested.results[name].rows_extracted == info["rows"], name
    landed = list((ingested.root / "data" / "lake" / "raw").rglob("*.parquet"))
    assert len(landed) == len(catalog.FEEDS)
    assert all(f"dt={DAY.isoformat()}" in str(p) for p in landed)


def test_every_batch_reconciles(ingested: DayWarehouse):
    batches = _query(ingested.url, "select * from audit.batches")
    assert len(batches) == len(catalog.FEEDS)
    for b in batches:
        assert b["rows_extracted"] == b["rows_loaded"] + b["rows_quarantined"] + b["rows_rejected"], b[
            "batch_id"
        ]
        held = _query(
            ingested.url,
            f'select count(*) as n from quarantine."{b["feed"]}" where _batch_id = ?',
            [b["batch_id"]],
        )[0]["n"]
        assert held == b["rows_quarantined"]
        assert b["checksum"] and len(b["checksum"]) == 64
    results = _query(ingested.url, "select feed, count(*) as n from audit.validation_results group by feed")
    assert {r["feed"] for r in results} == {f.name for f in catalog.FEEDS}


def _normal_key(feed: Feed, parts: list) -> str:
    out = []
    for name, value in zip(feed.primary_key, parts, strict=True):
        if feed.column(name).type == "timestamp":
            stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize(feed.timezone) if stamp.tzinfo is None else stamp
            out.append(stamp.tz_convert("UTC").isoformat())
        else:
            out.append(str(value))
    return "|".join(out)


def test_quarantine_holds_every_injected_defect_and_no_clean_row(ingested: DayWarehouse):
    truth = pd.read_parquet(truth_dir(ingested.root / "data" / "sources", DAY) / "defects.parquet")
    truth = truth[~truth["defect"].isin(["late_arriving", "renamed_column"])]
    found = expected_total = true_positive = 0
    for feed in catalog.FEEDS:
        rows = truth[truth["feed"] == feed.name]
        expected = Counter(
            _normal_key(feed, key.split("|"))
            for key in rows.drop_duplicates(["record_key", "row_number"])["record_key"]
        )
        held = _query(ingested.url, f'select _record from quarantine."{feed.name}"')
        got = Counter()
        for row in held:
            record = json.loads(row["_record"])
            got[_normal_key(feed, [record[feed.column(k).header] for k in feed.primary_key])] += 1
        found += sum(got.values())
        expected_total += sum(expected.values())
        true_positive += sum((got & expected).values())
        assert not (got - expected), (
            f"{feed.name}: clean rows quarantined: {list((got - expected).elements())[:5]}"
        )
    assert expected_total > 50
    assert true_positive / expected_total >= 0.99, "recall"
    assert true_positive == found, "precision"


def test_failed_rules_name_the_defect(ingested: DayWarehouse):
    held = _query(ingested.url, 'select _failed_rules, _record from quarantine."dispatch_records"')
    rules = {rule for row in held for rule in json.loads(row["_failed_rules"])}
    assert any(rule.startswith("order__") for rule in rules), rules
    power = _query(ingested.url, 'select _failed_rules from quarantine."power_load_readings"')
    power_rules = {rule for row in power for rule in json.loads(row["_failed_rules"])}
    assert {"unique_key", "range__load_kw", "power_factor_physical"} <= power_rules


def _checksum(url: str) -> dict[str, tuple[int, str]]:
    warehouse = connect(url)
    out = {}
    try:
        tables = (
            [("raw", f.name) for f in catalog.FEEDS]
            + [("quarantine", f.name) for f in catalog.FEEDS]
            + [("audit", "batches")]
        )
        for schema, table in tables:
            frame = warehouse.query(f'select * from "{schema}"."{table}"').to_pandas()
            frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
            frame = frame.sort_values(
                list(frame.columns)[:3] + ["_row"] if "_row" in frame.columns else list(frame.columns)[:3]
            ).astype(str)
            digest = hashlib.sha256(
                pd.util.hash_pandas_object(frame, index=False).values.tobytes()
            ).hexdigest()
            out[f"{schema}.{table}"] = (len(frame), digest)
    finally:
        warehouse.close()
    return out


def test_rerunning_batches_leaves_the_warehouse_identical(ingested: DayWarehouse):
    before = _checksum(ingested.url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(ingested.root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", ingested.url)
        with embedded_sources():
            rerun = _ingest_all(
                [
                    catalog.get_feed(n)
                    for n in (
                        "power_load_readings",
                        "alerts_110",
                        "dispatch_records",
                        "boiler_inventory",
                        "old_houses",
                        "rescuers",
                    )
                ]
            )
    assert all(not isinstance(r, BatchFailed) for r in rerun.values())
    assert _checksum(ingested.url) == before
    # both attempts of a rerun batch are in the audit trail, each with its own lake file and one checksum
    attempts = _query(
        ingested.url,
        "select count(*) as n, count(distinct landed_path) as files, count(distinct checksum) as sums "
        "from audit.batch_attempts where feed = 'alerts_110'",
    )[0]
    assert (attempts["n"], attempts["files"], attempts["sums"]) == (2, 2, 1)


def test_a_renamed_column_fails_the_batch_and_loads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    day = pd.Timestamp("2026-11-21").date()
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    Simulator(tmp_path / "data" / "sources", scale=0.01).simulate_day(day, feeds=["flood_prone_roads"])
    with embedded_sources(), pytest.raises(BatchFailed) as failure:
        ingest("flood_prone_roads", *day_interval(day))
    message = str(failure.value)
    assert (
        "flood_prone_roads" in message
        and "flood_prone_roads:2026-11-21" in message
        and "columns_match_catalog" in message
    )
    assert "max_water_depth_cm" in message and "max_depth_cm" in message
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    assert _query(url, 'select count(*) as n from raw."flood_prone_roads"')[0]["n"] == 0
    batch = _query(url, "select * from audit.batches")[0]
    assert batch["status"] == "failed" and batch["rows_rejected"] == batch["rows_extracted"] > 0
    assert batch["rows_loaded"] == 0 and "columns_match_catalog" in batch["error"]
    incoming = list(
        (tmp_path / "data" / "sources" / "drop" / "jtj" / "flood_prone_roads" / "incoming").glob("*.csv")
    )
    assert incoming, "a failed batch's file stays in incoming/ for the department to resend"


def test_a_departments_file_with_an_extra_column_is_loaded_and_the_column_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    export = tmp_path / "schools_export.csv"
    export.write_text(
        "school_id,name,school_type,town_code,lat,lon,students,is_shelter,updated_at,principal_office\n"
        "SC1,灵溪一小,primary,330327100,27.5,120.41,900,1,2026-11-27 09:00:00,Room 101\n"
        "SC2,矾山中学,junior,330327101,27.32,120.40,abc,0,2026-11-27 09:05:00,Room 202\n",
        encoding="utf-8",
    )
    result = validate_and_load(land_file("schools", export))
    assert result.rows_extracted == 2 and result.rows_loaded == 1 and result.rows_quarantined == 1
    assert result.extra_columns == ["principal_office"]
    loaded = _query(url, 'select school_id, students, is_shelter, _extra from raw."schools"')
    assert (
        loaded[0]["school_id"] == "SC1" and loaded[0]["students"] == 900 and loaded[0]["is_shelter"] is True
    )
    assert json.loads(loaded[0]["_extra"]) == {"principal_office": "Room 101"}
    held = _query(url, 'select _failed_rules, _errors from quarantine."schools"')[0]
    assert json.loads(held["_failed_rules"]) == ["values_have_declared_types"]
    assert "students" in held["_errors"] and "abc" in held["_errors"]


def test_replay_revalidates_quarantined_batches_after_a_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A rule that was too strict held rows back; after the suite is fixed, replay loads them."""
    from emergency_dw.pipeline import quarantine

    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    suites = tmp_path / "expectations"
    suites.mkdir()
    monkeypatch.setenv("EDW_EXPECTATIONS_DIR", str(suites))
    too_strict = {
        "name": "few_students",
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": "students", "max_value": 500},
        "severity": "row",
    }
    (suites / "schools.json").write_text(json.dumps({"feed": "schools", "rules": [too_strict]}))
    export = tmp_path / "schools_20261127.csv"
    export.write_text(
        "school_id,name,school_type,town_code,lat,lon,students,is_shelter,updated_at\n"
        "SC1,灵溪一小,primary,330327100,27.5,120.41,900,1,2026-11-27 09:00:00\n"
        "SC2,矾山中学,junior,330327101,27.32,120.40,300,0,2026-11-27 09:05:00\n",
        encoding="utf-8",
    )
    first = validate_and_load(land_file("schools", export))
    assert (first.rows_loaded, first.rows_quarantined) == (1, 1)
    assert quarantine.summary("schools") == [
        {"feed": "schools", "rule": "few_students", "rows": 1, "batches": 1}
    ]
    (suites / "schools.json").write_text(json.dumps({"feed": "schools", "rules": []}))
    [replayed] = quarantine.replay("schools")
    assert (replayed.rows_loaded, replayed.rows_quarantined) == (2, 0)
    assert quarantine.summary("schools") == []


@pytest.fixture(scope="module")
def built(ingested: DayWarehouse):
    """`dbt build` of the whole project (seeds, staging of every feed, every mart and test) on the day."""
    return ingested.build


def test_dbt_builds_the_warehouse_from_the_ingested_day(ingested: DayWarehouse, built):
    """`dbt build` (seeds, staging of every feed, marts and all their tests) passes on this backend."""
    run = built
    failed = run.failed
    assert run.success and not failed, (run.error, failed[:5])
    models = {r["node"] for r in run.results if r["node"].startswith("model.")}
    assert {f"model.emergency_dw.stg_{f.department}__{f.name}" for f in catalog.FEEDS} <= models
    phones = _query(
        ingested.url,
        'select count(*) as n from staging."stg_gaj__alerts_110" where caller_phone_hash is not null',
    )[0]["n"]
    assert phones > 0
    columns = _query(
        ingested.url,
        "select column_name from information_schema.columns where table_schema = 'staging' and table_name = 'stg_gaj__alerts_110'",
    )
    assert "caller_phone" not in {c["column_name"] for c in columns}, "personal data is hashed in staging"


def test_a_batch_far_below_the_feeds_usual_volume_fails_critically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    suites = tmp_path / "expectations"
    suites.mkdir()
    monkeypatch.setenv("EDW_EXPECTATIONS_DIR", str(suites))
    # the band every feed expected daily gets from the catalog, given to a snapshot feed by hand
    band = [row_count_rule(catalog.get_feed("alerts_110"))]
    (suites / "schools.json").write_text(json.dumps({"feed": "schools", "rules": band}))
    header = "school_id,name,school_type,town_code,lat,lon,students,is_shelter,updated_at\n"
    for k, rows in enumerate([20, 22, 19, 21, 2]):
        export = tmp_path / f"schools_2026112{k}.csv"
        body = "".join(
            f"S{k}-{i},学校{i},primary,330327100,27.5,120.41,100,1,2026-11-2{k} 09:00:00\n"
            for i in range(rows)
        )
        export.write_text(header + body, encoding="utf-8")
        landed = land_file("schools", export)
        if rows > 2:
            assert validate_and_load(landed).rows_loaded == rows
            continue
        with pytest.raises(BatchFailed) as failure:
            validate_and_load(landed)
        assert failure.value.rule == "row_count_in_band" and "schools" in str(failure.value)
        assert landed.batch_id in str(failure.value)
    audit = _query(url, "select status, count(*) as n from audit.batches group by status order by status")
    assert audit == [{"status": "failed", "n": 1}, {"status": "loaded", "n": 4}]


# What personal data looks like (DESIGN section 5: marts hold none). Neighbours that are letters or digits,
# or a decimal point between digits, rule out digit runs inside hashes, identifiers and numbers; Chinese
# text around a phone or ID number does not.
ALONE_BEFORE, ALONE_AFTER = r"(?<![0-9A-Za-z])(?<!\d\.)", r"(?![0-9A-Za-z])(?!\.\d)"
MOBILE = re.compile(ALONE_BEFORE + r"1[3-9]\d{9}" + ALONE_AFTER)
LANDLINE = re.compile(ALONE_BEFORE + r"(?<!-)0\d{2,3}-\d{7,8}" + ALONE_AFTER)
ID_NUMBER = re.compile(ALONE_BEFORE + r"\d{17}[\dXx]" + ALONE_AFTER)


def _personal_values(url: str) -> dict[str, set[str]]:
    """Every personal value the simulated departments sent (the catalog's PII columns, as loaded in raw)."""
    found: dict[str, set[str]] = {}
    for feed in catalog.FEEDS:
        for column in (c for c in feed.columns if c.pii):
            rows = _query(
                url, f'select distinct cast("{column.name}" as varchar) as v from raw."{feed.name}"'
            )
            found.setdefault(f"{feed.name}.{column.name}", set()).update(
                r["v"] for r in rows if r["v"] and r["v"].strip()
            )
    return found


def _scan(
    url: str,
    schema: str,
    personal: dict[str, set[str]],
    only: set[str] | None = None,
    strip: re.Pattern | None = None,
) -> tuple[set[str], int, list[str]]:
    """Every value of every column of every table and view in ``schema`` (or ``only`` those), as text,
    against the patterns and the actual personal values; returns (the relations, values scanned, findings)."""
    everything = set().union(*personal.values())
    # quoted inside a longer text (a description naming the caller): names of 3+ characters, every number
    quoted = re.compile(
        "|".join(re.escape(v) for v in sorted((v for v in everything if len(v) >= 3), key=len, reverse=True))
    )
    warehouse = connect(url)
    try:
        listing = warehouse.query(
            "select table_name, column_name from information_schema.columns where table_schema = ? "
            "order by table_name, ordinal_position",
            [schema],
        ).to_pylist()
        relations = {r["table_name"] for r in listing if only is None or r["table_name"] in only}
        findings, scanned = [], 0
        for r in listing:
            relation, column = r["table_name"], r["column_name"]
            if relation not in relations:
                continue
            text = warehouse.query(f'select cast("{column}" as varchar) as v from "{schema}"."{relation}"')
            values = pd.Series([v for v in text.column("v").to_pylist() if v is not None], dtype=object)
            if strip is not None and len(
                values
            ):  # e.g. salted hashes, whose hex digits may look like a number
                values = values.str.replace(strip, "#", regex=True)
            scanned += len(values)
            where = f"{schema}.{relation}.{column}"
            for label, pattern in (
                ("mobile number", MOBILE),
                ("landline", LANDLINE),
                ("ID number", ID_NUMBER),
            ):
                hits = values[values.str.contains(pattern)]
                if len(hits):
                    findings.append(f"{where} holds a {label}: {hits.iloc[0]!r}")
            exact = values[values.isin(everything)]
            if len(exact):
                findings.append(f"{where} holds a person's data: {exact.iloc[0]!r}")
            longer = values[values.str.len() > 3]
            inside = longer[longer.str.contains(quoted)] if len(longer) else longer
            if len(inside):
                findings.append(f"{where} quotes a person's data in {inside.iloc[0]!r}")
    finally:
        warehouse.close()
    return relations, scanned, findings


def test_no_phone_id_number_or_name_reaches_any_mart(ingested: DayWarehouse, built):
    """Every column of every mart, every value: no mobile or landline number, no ID number, and none of the
    names, phones and ID numbers the simulator gave rescuers, evaluators, callers and house owners."""
    assert built.success, built.error
    personal = _personal_values(ingested.url)
    for key in ("rescuers.name", "evaluators.name", "alerts_110.caller_phone"):
        assert personal.get(key), (
            f"{key}: the raw data should carry personal data for this check to mean anything"
        )
    assert any(k.endswith("id_number") and v for k, v in personal.items())
    relations, scanned, findings = _scan(ingested.url, "marts", personal)
    from emergency_dw.transform import DBT_PROJECT

    every_mart = {p.stem for p in (DBT_PROJECT / "models" / "marts").rglob("*.sql")}
    assert relations == every_mart and scanned > 10_000, (relations ^ every_mart, scanned)
    # the same scan over raw tables that do hold personal data finds it (the scan can see what it looks for)
    _, _, in_raw = _scan(ingested.url, "raw", personal, only={"alerts_110", "rescuers", "evaluators"})
    for what in (
        "raw.alerts_110.caller_phone holds a mobile number",
        "raw.rescuers.name holds a person's data",
    ):
        assert any(f.startswith(what) for f in in_raw), (what, in_raw)
    assert any("id_number holds a ID number" in f for f in in_raw), in_raw
    assert not findings, findings[:10]
    RELIABILITY[f"mart values scanned for personal data ({ingested.url.split(':')[0]})"] += scanned


def _delivered_personal_values(url: str, feeds: list[Feed]) -> dict[str, set[str]]:
    """The personal values of the quarantined rows as the departments delivered them (read from the lake
    files the audit rows name, since the warehouse keeps them only hashed)."""
    found: dict[str, set[str]] = {}
    for feed in feeds:
        held = _query(url, f'select _batch_id, _row from quarantine."{feed.name}"')
        for batch_id in {r["_batch_id"] for r in held}:
            [batch] = _query(url, "select landed_path from audit.batches where batch_id = ?", [batch_id])
            rows = [r["_row"] for r in held if r["_batch_id"] == batch_id]
            delivered = pq.read_table(batch["landed_path"]).take(rows).to_pylist()
            for record in delivered:
                for column in (c for c in feed.columns if c.pii):
                    value = record.get(column.header, record.get(column.name))
                    if isinstance(value, str) and value.strip():
                        found.setdefault(f"{feed.name}.{column.name}", set()).add(value)
    return found


HASHED = re.compile(r"sha256:[0-9a-f]{64}")


def test_quarantine_keeps_personal_data_only_hashed_and_auditors_read_it_masked(ingested: DayWarehouse):
    """On both warehouses: a quarantined record's personal fields (and a conversion error quoting one) are
    kept as salted hashes, never in clear, in quarantine.<feed>, in audit and in the Great Expectations results
    the Data Docs are made of; and for every feed with personal fields, audit.quarantine_<feed> shows its
    quarantined rows with those fields masked. Before, the embedded DuckDB kept caller_phone in clear and
    had no masked views."""
    pii_feeds = [f for f in catalog.FEEDS if any(c.pii for c in f.columns)]
    views = {
        r["table_name"]
        for r in _query(
            ingested.url,
            "select table_name from information_schema.tables where table_schema = 'audit' and table_type = 'VIEW'",
        )
    }
    assert {f"quarantine_{f.name}" for f in pii_feeds} <= views
    held = sum(
        _query(ingested.url, f'select count(*) as n from audit."quarantine_{f.name}"')[0]["n"]
        for f in pii_feeds
    )
    assert held > 0, "some quarantined rows of feeds with personal data, for the check to mean anything"
    masked = sum(
        _query(
            ingested.url,
            f"select count(*) as n from audit.\"quarantine_{f.name}\" where cast(_record as varchar) like '%***%'",
        )[0]["n"]
        for f in pii_feeds
    )
    assert masked > 0
    personal = _personal_values(ingested.url)
    delivered = _delivered_personal_values(ingested.url, pii_feeds)
    assert delivered, "quarantined rows carried personal values as delivered, for the check to mean anything"
    for key, values in delivered.items():
        personal.setdefault(key, set()).update(values)
    hashed_at_rest = sum(
        _query(
            ingested.url,
            f"select count(*) as n from quarantine.\"{f.name}\" where cast(_record as varchar) like '%sha256:%'",
        )[0]["n"]
        for f in pii_feeds
    )
    assert hashed_at_rest > 0, "quarantined personal fields are kept as hashes"
    for schema in ("audit", "quarantine"):
        _, scanned, findings = _scan(ingested.url, schema, personal, strip=HASHED)
        assert not findings, (schema, findings[:10])
    # the validation results behind the Data Docs quote failing values: never a personal one in clear
    everything = set().union(*delivered.values())
    for path in (ingested.root / "data" / "validation").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        leaked = [v for v in everything if json.dumps(v, ensure_ascii=False) in text]
        assert not leaked, (path.name, leaked[:5])
    RELIABILITY["masked quarantine rows checked"] += held
