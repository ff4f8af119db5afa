"""No rerun or replay destroys good data: a failed attempt at a batch leaves the good load as it was and is
recorded beside it, every attempt lands in a file of its own, and replay refuses a lake file that is not
the one the warehouse loaded.

Before: a department re-sent a day of boiler_inventory with a column renamed; the rerun failed its
critical rule as it should, and then raw.boiler_inventory held 0 rows for that day and the lake file had
been overwritten by the bad one."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
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

    # the run summary and the audit page show the failed rerun beside the good load that stayed
    from emergency_dw.reports.pages import build_report_pages
    from emergency_dw.reports.summary import collect_run_summary

    [rerun] = collect_run_summary(url, [DAY]).failed_reruns
    assert (rerun.batch_id, rerun.failed_rule, rerun.good_rows_loaded) == (
        batch_id,
        "columns_match_catalog",
        good["rows_loaded"],
    )
    audit_page = next(p for p in build_report_pages(tmp_path / "data", url) if p.parent.name == "audit")
    section = audit_page.read_text().split('id="failed-reruns"')[1].split("</section>")[0]
    assert batch_id in section and "columns_match_catalog" in section
    assert f"{good['rows_loaded']:,} rows, loaded" in section


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


# ---------------------------------------------------------------- one load of a batch at a time
def _rerun_slowly(job: dict) -> dict:
    """A child process's rerun of one landed batch: each replace of a batch's rows pauses between its
    delete and its insert (a big day's COPY takes that long), and both children start the load together."""
    import os
    import time

    os.environ.update(job["env"])
    from emergency_dw.pipeline import ingest as pipeline
    from emergency_dw.warehouse import BulkTransaction

    def slow_replace(self, schema, table, key_column, key_value, data):
        self.execute(f'delete from "{schema}"."{table}" where "{key_column}" = ?', [key_value])
        time.sleep(1.0)
        return self.append(schema, table, data)

    BulkTransaction.replace_rows = slow_replace
    job["barrier"].wait(timeout=120)
    try:
        result = pipeline.validate_and_load(job["landed"], job["url"])
    except Exception as exc:  # noqa: BLE001 - reported to the test, which names it
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": result.status, "rows_loaded": result.rows_loaded, "error": None}


@pytest.mark.postgres
def test_two_reruns_of_one_batch_at_once_on_postgres_leave_each_row_once(tmp_path: Path):
    """A scheduled run and a manual rerun of the same day load at the same moment: the second waits for
    the first's batch lock, then replaces its rows. Before: raw held every reading twice while
    audit.batches said the batch loaded once and reconciled."""
    import multiprocessing

    from databases import postgres_database

    feed = "alerts_110"
    data = tmp_path / "data"
    with postgres_database("edw_test_batch_lock") as (_, url), pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(data))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        Simulator(data / "sources", scale=0.1).simulate_day(DAY, feeds=[feed])
        with embedded_sources() as env:
            first = ingest(feed, *day_interval(DAY), url)
            landed = extract_and_land(feed, *day_interval(DAY))
        distinct = _rows(url, f"select count(distinct _row) as n from raw.{feed}")[0]["n"]
        assert first.rows_loaded == distinct > 0
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier = manager.Barrier(2)
            job = {
                "landed": landed.to_xcom(),
                "url": url,
                "barrier": barrier,
                "env": {**env, "EDW_DATA_DIR": str(data)},
            }
            with context.Pool(2) as pool:
                outcomes = pool.map(_rerun_slowly, [job, job])
        assert [o["error"] for o in outcomes] == [None, None], outcomes
        assert [o["rows_loaded"] for o in outcomes] == [first.rows_loaded] * 2
        per_row = _rows(url, f"select _row, count(*) as n from raw.{feed} group by _row having count(*) > 1")
        assert per_row == [], f"{len(per_row)} rows loaded more than once"
        assert _rows(url, f"select count(*) as n from raw.{feed}")[0]["n"] == distinct
        [batch] = _rows(url, "select * from audit.batches where batch_id = ?", [landed.batch_id])
        assert batch["rows_loaded"] + batch["rows_quarantined"] == batch["rows_extracted"]
        attempts = _rows(url, "select status from audit.batch_attempts where batch_id = ?", [landed.batch_id])
        assert [a["status"] for a in attempts] == ["loaded"] * 3


# ---------------------------------------------------------------- the database counts the load
def test_a_row_lost_in_the_load_fails_the_batch_and_keeps_the_good_load(
    loaded, monkeypatch: pytest.MonkeyPatch
):
    """rows_loaded is what the warehouse holds for the batch after the load, counted in the load's own
    transaction: a row lost on its way in (here the insert drops one and still reports them all) fails the
    batch by its rows_reconcile rule, and the good load stays. Before, rows_loaded was the rows handed to the
    insert, so the audit said the batch loaded whole and reconciled."""
    from emergency_dw.warehouse.duckdb_backend import DuckDBWarehouse

    url, results = loaded
    feed = "alerts_110"
    batch_id = results[feed].batch_id
    good = _batch(url, batch_id)
    raw_before = _rows(url, f"select count(*) as n from raw.{feed}")
    insert = DuckDBWarehouse._insert

    def lossy_insert(self, schema, table, data):
        if schema == "raw" and data.num_rows:
            insert(self, schema, table, data.slice(0, data.num_rows - 1))
            return data.num_rows
        return insert(self, schema, table, data)

    monkeypatch.setattr(DuckDBWarehouse, "_insert", lossy_insert)
    with embedded_sources(), pytest.raises(BatchFailed) as failed:
        ingest(feed, *day_interval(DAY))
    assert failed.value.rule == "rows_reconcile" and batch_id in str(failed.value)
    assert f"{good['rows_loaded'] - 1:,} rows in raw.{feed}" in str(failed.value)
    assert _rows(url, f"select count(*) as n from raw.{feed}") == raw_before
    assert _batch(url, batch_id)["checksum"] == good["checksum"]
    attempts = _rows(
        url,
        "select status, failed_rule from audit.batch_attempts where batch_id = ? order by finished_at",
        [batch_id],
    )
    assert attempts[-1] == {"status": "failed", "failed_rule": "rows_reconcile"}


def test_two_edw_ingest_of_one_day_at_once_take_turns(tmp_path: Path):
    """Two ``edw ingest`` of the same feed and day from one data directory (a manual rerun while the
    scheduled one runs): the second says the first is running, waits for it, then reruns the batch; both
    succeed. Before, both wrote the same DAG run into Airflow's metadata database and one died there with a
    SQLAlchemy traceback."""
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    Simulator(data / "sources", scale=0.01).simulate_day(DAY, feeds=["alerts_110"])
    env = {**os.environ, "EDW_DATA_DIR": str(data)}
    env.pop("EDW_WAREHOUSE_URL", None)
    command = [sys.executable, "-m", "emergency_dw.cli", "ingest", "alerts_110", "--date", DAY.isoformat()]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = data / "airflow" / "locks" / f"ingest__alerts_110__{DAY.isoformat()}.lock"
    for _ in range(600):  # the second starts once the first holds the day
        if lock.exists() and lock.read_text().startswith("process"):
            break
        time.sleep(0.05)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    first_out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert "is already running in process" in second.stdout + second.stderr
    for output in (first_out, second.stdout + second.stderr):
        assert "Traceback" not in output, output[-3000:]
    # and an ingest says nothing a user cannot act on (OpenLineage is off on purpose: no notice about it)
    assert "[warning" not in first_out, first_out[:3000]
    url = f"duckdb:///{data / 'warehouse.duckdb'}"
    attempts = _rows(url, "select status from audit.batch_attempts where batch_id = ?", [f"alerts_110:{DAY}"])
    assert [a["status"] for a in attempts] == ["loaded", "loaded"]
    distinct = _rows(url, "select count(*) as n, count(distinct _row) as d from raw.alerts_110")[0]
    assert distinct["n"] == distinct["d"] > 0
    assert not list((data / "warehouse.duckdb.locks").glob("*.lock")), (
        "the batch's lock file went with its holder"
    )


# ---------------------------------------------------------------- a data directory belongs to one warehouse
def test_a_data_directory_refuses_a_second_warehouse(loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """make run on DuckDB, then the same ./data with EDW_WAREHOUSE_URL pointing at Postgres: the second
    warehouse is refused before it lands or loads anything, with the way out. Before, its run overwrote the
    first's lake and a later replay on DuckDB loaded the Postgres run's files."""
    import os
    import subprocess
    import sys

    from emergency_dw.config import DataDirectoryClaimed

    url, _ = loaded
    data = tmp_path / "data"
    assert (data / ".warehouse").read_text().strip() == "duckdb:///./warehouse.duckdb"
    lake_before = sorted(p.name for p in (data / "lake").rglob("*.parquet"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:5432/another_warehouse")
    with embedded_sources(), pytest.raises(DataDirectoryClaimed) as refused:
        ingest("alerts_110", *day_interval(DAY))
    message = str(refused.value)
    assert (
        "duckdb:///./warehouse.duckdb" in message
        and "postgresql://127.0.0.1:5432/another_warehouse" in message
    )
    assert "EDW_DATA_DIR" in message and "nothing was changed" in message
    with pytest.raises(DataDirectoryClaimed):
        quarantine.replay("alerts_110")
    assert sorted(p.name for p in (data / "lake").rglob("*.parquet")) == lake_before

    # `edw ingest --all` in that directory, pointed at a new DuckDB file (a shell without the variable the
    # directory was made with): refused once, before any feed's DAG runs or the file is made; before, each of
    # the 41 DAGs failed in turn (a quarter of an hour) and told its owner, and the file was left behind
    def notices() -> int:
        return sum(len(p.read_text().splitlines()) for p in (data / "notifications").glob("*.jsonl"))

    notices_before = notices()
    command = [sys.executable, "-m", "emergency_dw.cli", "ingest", "--all", "--date", DAY.isoformat()]
    other = data / "other.duckdb"
    env = {**os.environ, "EDW_DATA_DIR": str(data), "EDW_WAREHOUSE_URL": f"duckdb:///{other}"}
    refused_cli = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    said = " ".join((refused_cli.stdout + refused_cli.stderr).split())  # as printed, wrapped to the terminal
    assert refused_cli.returncode != 0, said[-3000:]
    assert said.count("belongs to the warehouse duckdb:///./warehouse.duckdb") == 1, said[-3000:]
    assert "Traceback" not in said and "ingest__" not in said, said[-3000:]
    assert not other.exists()
    assert notices() == notices_before
    assert sorted(p.name for p in (data / "lake").rglob("*.parquet")) == lake_before

    # the directory may move with its warehouse inside it: it is still the same warehouse
    moved = tmp_path / "moved"
    data.rename(moved)
    monkeypatch.setenv("EDW_DATA_DIR", str(moved))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", f"duckdb:///{moved / 'warehouse.duckdb'}")
    with embedded_sources():
        assert ingest("boiler_inventory", *day_interval(DAY)).status == "loaded"
