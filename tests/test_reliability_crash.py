"""A load killed at random points (SIGKILL: no cleanup, no rollback handler) leaves no partial batch,
and rerunning the batch leaves the warehouse exactly as one clean run does, on DuckDB and on Postgres.

The load runs in a child process that has already imported everything and warmed Great Expectations;
it reports when its transaction begins and ends, so the kills land where they matter: before the
transaction, inside it (delete, COPY of raw, quarantine and audit) and during commit and close."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emergency_dw.pipeline.ingest import day_interval, extract_and_land, validate_and_load
from emergency_dw.simulator.run import Simulator
from emergency_dw.warehouse import connect

from conftest import DAY, RELIABILITY
from reliability import batch_rows, create_database, drop_database, postgres_url, tables_of, warehouse_state

pytestmark = pytest.mark.timeout(240)

FEED = "power_load_readings"
SCALE = 0.05  # about 69,000 readings
SEED = 20261127
KILLS = 5

LOADER = r"""
import json, os, sys, traceback
from contextlib import contextmanager

import numpy as np
import pandas as pd

from emergency_dw.pipeline import ingest, validate

validate.run_suite(  # warm Great Expectations up once; every load is a fork of this warm process
    "warm-up",
    pd.DataFrame({"_row": np.arange(2), "x": [1, 2]}),
    [{"name": "r", "expectation": "expect_column_values_to_be_between",
      "kwargs": {"column": "x", "min_value": 0}, "severity": "row"}],
)


def say(word):
    sys.stdout.write(word + "\n")
    sys.stdout.flush()


real_connect = ingest.connect


def connect(url):
    warehouse = real_connect(url)
    real_transaction = warehouse.transaction

    @contextmanager
    def transaction():
        say("tx-begin")
        with real_transaction() as tx:
            yield tx
            say("tx-commit")
        say("tx-done")

    warehouse.transaction = transaction
    return warehouse


ingest.connect = connect
say("ready")
for line in sys.stdin:
    landed, url = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            say(f"pid {os.getpid()}")
            say("go")
            ingest.validate_and_load(landed, url)
            say("done")
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    say(f"exit {os.waitstatus_to_exitcode(status)}")
"""


class Loader:
    """A warm process that forks one loader per batch it is sent; the fork is what gets killed."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOADER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, GX_ANALYTICS_ENABLED="False"),
        )
        self.seen: dict[str, float] = {}
        self.pid: int | None = None
        self.exit_code: int | None = None
        assert self.wait_for("ready"), "the loader did not start"

    def start(self, landed: dict, url: str) -> None:
        self.seen, self.pid, self.exit_code = {}, None, None
        self.proc.stdin.write(json.dumps([landed, url]) + "\n")
        self.proc.stdin.flush()
        assert self.wait_for("go") and self.pid

    def wait_for(self, marker: str) -> bool:
        """True once the load printed ``marker``; False when it ended without printing it."""
        while marker not in self.seen and "exit" not in self.seen:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the loader process died")
            word = line.strip()
            if word.startswith("pid "):
                self.pid = int(word.split()[1])
            elif word.startswith("exit "):
                self.exit_code = int(word.split()[1])
                word = "exit"
            self.seen[word] = time.monotonic()
        return marker in self.seen

    def finish(self) -> int | None:
        self.wait_for("exit")
        return self.exit_code

    def kill(self) -> bool:
        """SIGKILL the load; True when it was still running (a real crash, not a finished run)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.wait_for("exit")
        return self.exit_code == -signal.SIGKILL and "done" not in self.seen

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def loader():
    running = Loader()
    yield running
    running.close()


@dataclass
class Backend:
    name: str
    databases: list[str] = field(default_factory=list)
    root: Path | None = None

    def fresh(self, label: str) -> str:
        if self.name == "duckdb":
            return f"duckdb:///{self.root / f'{label}.duckdb'}"
        database = create_database("edw_test_crash")
        self.databases.append(database)
        return postgres_url(database)

    def drop(self) -> None:
        for database in self.databases:
            drop_database(database)


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The day's power readings at scale 0.05, landed in the lake once (the load is what crashes)."""
    root = tmp_path_factory.mktemp("crash")
    Simulator(root / "sources", scale=SCALE).simulate_day(DAY, feeds=[FEED])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_DROP_ROOT", str(root / "sources" / "drop"))
        batch = extract_and_land(FEED, *day_interval(DAY)).to_xcom()
    batch["files"] = []  # leave the drop folder alone: only the load is under test
    assert batch["rows"] > 60_000
    return batch


def _kill_points(timing: dict[str, float]) -> list[tuple[str, float]]:
    """Where to kill, from the clean run's timing: before, inside (x3) and at the end of the transaction."""
    rng = random.Random(SEED)
    before = timing["tx-begin"] - timing["go"]
    inside = timing["tx-commit"] - timing["tx-begin"]
    ending = max(timing["exit"] - timing["tx-commit"], 0.01)
    points = [("go", rng.uniform(0.1, 0.9) * before)]
    points += [("tx-begin", rng.uniform(0.05, 0.9) * inside) for _ in range(3)]
    points.append(("tx-commit", rng.uniform(0.0, 0.2) * ending))  # commit and close are quick
    rng.shuffle(points)
    return points[:KILLS]


def _audit(url: str, batch_id: str) -> list[tuple]:
    warehouse = connect(url)
    try:
        tables = (
            warehouse.query(
                "select count(*) as n from information_schema.tables where table_schema = 'audit' and table_name = 'batches'"
            )
            .column(0)[0]
            .as_py()
        )
        if not tables:
            return []
        rows = warehouse.query(
            "select status, rows_loaded, rows_quarantined from audit.batches where batch_id = ?", [batch_id]
        ).to_pylist()
    finally:
        warehouse.close()
    return [(r["status"], r["rows_loaded"], r["rows_quarantined"]) for r in rows]


@pytest.mark.parametrize("backend_name", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_load_killed_at_random_points_never_shows_a_partial_batch(
    backend_name: str, landed: dict, loader: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EDW_DATA_DIR", str(Path(landed["path"]).parents[4]))
    backend = Backend(backend_name, root=tmp_path)
    batch_id = landed["batch_id"]
    try:
        # The clean run, in a fork like the others: the reference state and where its time goes.
        reference = backend.fresh("reference")
        loader.start(landed, reference)
        assert loader.finish() == 0, "the clean load succeeded"
        timing = dict(loader.seen)
        clean = warehouse_state(reference, tables_of(FEED))
        loaded = batch_rows(reference, "raw", FEED, batch_id)
        held = batch_rows(reference, "quarantine", FEED, batch_id)
        assert loaded + held == landed["rows"] and loaded > 60_000

        url = backend.fresh("crash-0")
        crashes = 0
        for number, (marker, delay) in enumerate(_kill_points(timing)):
            if number % 2 == 0 and number:
                url = backend.fresh(f"crash-{number}")  # half the kills hit a first load, half a reload
            had_batch = batch_rows(url, "raw", FEED, batch_id) > 0
            loader.start(landed, url)
            if loader.wait_for(marker):
                time.sleep(delay)
            crashes += loader.kill()
            raw = batch_rows(url, "raw", FEED, batch_id)
            quarantine = batch_rows(url, "quarantine", FEED, batch_id)
            assert (raw, quarantine) in ((0, 0), (loaded, held)), (
                f"kill {number} ({marker} + {delay:.3f} s) left a partial batch: {raw} raw, {quarantine} held"
            )
            if had_batch:
                assert raw == loaded, "a crashed reload keeps the batch that was loaded before"
            audit = _audit(url, batch_id)
            assert audit == ([] if raw == 0 else [("loaded", loaded, held)]), "the audit agrees with raw"
            result = validate_and_load(landed, url)  # the rerun, to completion
            assert (result.rows_loaded, result.rows_quarantined) == (loaded, held)
            assert warehouse_state(url, tables_of(FEED)) == clean, f"after kill {number} and the rerun"
        RELIABILITY[f"crashes survived ({backend_name})"] += crashes
        assert crashes >= KILLS - 1, "the kills landed while the load was running"
    finally:
        backend.drop()
