"""No rerun or replay destroys good data: a failed attempt at a batch leaves the good load as it was and is
recorded beside it, every attempt lands in a file of its own, and replay refuses a lake file that is not
the one the warehouse loaded.

Before: a department re-sent a day of boiler_inventory with a column renamed; the rerun failed its
critical rule as it should, and then raw.boiler_inventory held 0 rows for that day and the lake file had
been overwritten by the bad one."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emergency_dw.catalog import get_feed
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline import quarantine
from emergency_dw.pipeline.ingest import (
    BatchFailed,
    LandedBatch,
    _write_atomic,
    day_interval,
    extract_and_land,
    ingest,
    lake_path,
    validate_and_load,
)
from emergency_dw.simulator.run import Simulator
from emergency_dw.warehouse import connect

DAY = dt.date(2026, 11, 26)
FEEDS = ["boiler_inventory", "alerts_110"]


def _rows(url: str, sql: str, params: list | None = None) -> list[dict]:
    warehouse = connect(url)
    try:
        return warehouse.query(sql, params or []).to_pylist()
    finally:
        warehouse.close()


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", url)
    monkeypatch.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
    Simulator(tmp_path / "data" / "sources", scale=0.1).simulate_day(DAY, feeds=FEEDS)
    with embedded_sources():
        results = {feed: ingest(feed, *day_interval(DAY)) for feed in FEEDS}
    return url, results


def _batch(url: str, batch_id: str) -> dict:
    [row] = _rows(url, "select * from audit.batches where batch_id = ?", [batch_id])
    return row


def test_a_failed_rerun_keeps_the_good_load_and_is_recorded_beside_it(loaded, tmp_path: Path):
    url, results = loaded
    feed = get_feed("boiler_inventory")
    batch_id = results[feed.name].batch_id
    good = _batch(url, batch_id)
    raw_before = _rows(url, f"select * from raw.{feed.name} order by _row")
    assert good["status"] == "loaded" and len(raw_before) == good["rows_loaded"] > 0

    # the department re-sends the day with a column renamed: a new attempt at the same batch
    table = pq.read_table(good["landed_path"])
    renamed = table.rename_columns(
        [f"{c}_renamed" if i == 3 else c for i, c in enumerate(table.column_names)]
    )
    assert renamed.column_names != table.column_names
    bad_path = lake_path(feed, batch_id, DAY)
    _write_atomic(bad_path, renamed)
    start, end = day_interval(DAY)
    with pytest.raises(BatchFailed) as failed:
        validate_and_load(
            LandedBatch(
                feed=feed.name,
                batch_id=batch_id,
                path=str(bad_path),
                rows=renamed.num_rows,
                source="re-sent export",
                interval_start=start.isoformat(),
                interval_end=end.isoformat(),
            )
        )
    message = str(failed.value)
    assert feed.name in message and batch_id in message and "columns_match_catalog" in message
    assert "stays in the warehouse" in message and "audit.batch_attempts" in message

    # raw, the current audit row and the good file are as they were
    assert _rows(url, f"select * from raw.{feed.name} order by _row") == raw_before
    after = _batch(url, batch_id)
    assert (after["status"], after["checksum"], after["landed_path"]) == (
        "loaded",
        good["checksum"],
        good["landed_path"],
    )
    assert hashlib.sha256(Path(good["landed_path"]).read_bytes()).hexdigest() == good["checksum"]
    # both attempts are kept, each pointing at its own file
    attempts = _rows(
        url,
        "select status, landed_path, checksum, failed_rule from audit.batch_attempts where batch_id = ? "
        "order by finished_at",
        [batch_id],
    )
    assert [a["status"] for a in attempts] == ["loaded", "failed"]
    assert attempts[1]["failed_rule"] == "columns_match_catalog"
    assert attempts[0]["landed_path"] != attempts[1]["landed_path"]
    assert all(Path(a["landed_path"]).is_file() for a in attempts)


def test_every_attempt_lands_in_a_file_of_its_own(loaded):
    url, results = loaded
    batch_id = results["alerts_110"].batch_id
    first = _batch(url, batch_id)
    with embedded_sources():
        again = extract_and_land("alerts_110", *day_interval(DAY))
    assert again.path != first["landed_path"]
    assert Path(first["landed_path"]).is_file() and Path(again.path).is_file()
    assert hashlib.sha256(Path(first["landed_path"]).read_bytes()).hexdigest() == first["checksum"]
    with pytest.raises(FileExistsError):
        _write_atomic(Path(again.path), pq.read_table(again.path))  # the lake is never overwritten


def test_replay_refuses_a_lake_file_that_is_not_the_one_loaded(loaded):
    url, results = loaded
    feed = "alerts_110"
    batch_id = results[feed].batch_id
    batch = _batch(url, batch_id)
    assert batch["rows_quarantined"] > 0, "the simulator's defects give the batch something to replay"
    raw_before = _rows(url, f"select count(*) as n from raw.{feed}")
    # another warehouse sharing the data directory, or a hand edit, changes the file under the audit row
    path = Path(batch["landed_path"])
    table = pq.read_table(path)
    path.unlink()
    pq.write_table(table.slice(0, 10), path)
    [outcome] = quarantine.replay(feed)
    assert outcome.status == "refused" and outcome.failed_rule == "lake_checksum"
    assert feed in outcome.error and batch_id in outcome.error and "EDW_DATA_DIR" in outcome.error
    assert _rows(url, f"select count(*) as n from raw.{feed}") == raw_before
    assert _batch(url, batch_id)["checksum"] == batch["checksum"]
