"""The benchmark harness keeps working: a tiny run prints and writes every figure with its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POSTGRES_URL

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.postgres
def test_bench_at_a_tiny_scale_writes_every_figure(tmp_path: Path):
    # the seed's volume shrunk so that two days of a tiny scale hold it (bench.toml's own, otherwise)
    shipped = (REPO / "plugins" / "emergency_dw" / "bench.toml").read_text()
    assert "records = 31_590_000" in shipped
    small = tmp_path / "bench.toml"
    small.write_text(shipped.replace("records = 31_590_000", "records = 3_000_000"))
    env = dict(
        os.environ,
        EDW_DATA_DIR=str(tmp_path / "data"),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        EDW_BENCH_TARGETS=str(small),
    )
    env.pop("EDW_WAREHOUSE_URL", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "bench",
            "--scale",
            "0.005",
            "--days",
            "2",
            "--postgres-url",
            POSTGRES_URL,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    latest = json.loads((tmp_path / "data" / "bench" / "latest.json").read_text())
    names = {f["name"] for f in latest["figures"]}
    assert {
        "load vs bare ingest",
        "load vs to_sql",
        "validation: power suite",
        "city-day: dbt build",
        "incremental build: day 2 vs day 1",
        "volume: throughput",
        "peak memory (RSS): bench process",
        "peak memory (RSS): ingest workers",
        "peak memory (RSS): build process",
        "peak memory (RSS): the whole run",
    } <= names
    assert any(n.startswith("volume: ") and n.endswith(" M records end to end") for n in names)
    by_name = {f["name"]: f for f in latest["figures"]}
    assert (
        by_name["load vs bare ingest"]["target"] == "<= 1.25x" and by_name["load vs bare ingest"]["value"] > 0
    )
    assert by_name["validation: power suite"]["value"] > 0
    whole = by_name["peak memory (RSS): the whole run"]["value"]
    assert whole >= by_name["peak memory (RSS): build process"]["value"], "the whole counts every process"
    assert "load vs bare ingest" in out.stdout and "written to" in out.stdout
