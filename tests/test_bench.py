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
    # the seed's volume shrunk so that one day of a tiny scale holds it (13,106 records at scale 0.005;
    # bench.toml's own, otherwise)
    shipped = (REPO / "plugins" / "edw_bench" / "bench.toml").read_text()
    assert "records = 31_590_000" in shipped
    small = tmp_path / "bench.toml"
    small.write_text(shipped.replace("records = 31_590_000", "records = 2_000_000"))
    # the history's backfill is a day, not the 28 of the baseline window
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
            "--backfill-days",
            "1",
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
        "load: DataFrame.to_sql vs bare ingest",
        "load: ANALYZE of the batch's partition",
        "city-day: dbt build",
        "history: backfill before the daily runs",
        "incremental build: day 2 vs day 1",
        "volume: throughput",
        "peak memory: volume (PSS)",
        "peak memory: history (PSS)",
        "peak memory: city-day (PSS)",
        "peak memory: largest ingest task process (RSS)",
        "peak memory: build process (RSS)",
        "peak memory: load and validation stages (RSS)",
    } <= names
    assert any(n.startswith("volume: ") and n.endswith(" M records end to end") for n in names)
    by_name = {f["name"]: f for f in latest["figures"]}
    assert (
        by_name["load vs bare ingest"]["target"] == "<= 1.25x" and by_name["load vs bare ingest"]["value"] > 0
    )
    assert by_name["validation: power suite"]["value"] > 0
    for stage in ("volume", "history"):  # a stage's processes together hold at least its largest task
        together = by_name[f"peak memory: {stage} (PSS)"]
        assert together["target"] == "< 2048 MiB"
        assert together["value"] >= 0.5 * by_name["peak memory: largest ingest task process (RSS)"]["value"]
    assert "1 day(s) from" in by_name["history: backfill before the daily runs"]["detail"]
    volume = next(
        f for f in latest["figures"] if f["name"].startswith("volume: ") and "end to end" in f["name"]
    )
    assert volume["detail"].startswith("1 days from"), volume["detail"]
    assert "load vs bare ingest" in out.stdout and "written to" in out.stdout
    # every BI query of the repository's list, timed on the history's warehouse with its target
    from emergency_dw.reports.bi_queries import bi_queries

    for query in bi_queries():
        figure = by_name[f"bi: {query.name} (p95)"]
        assert figure["target"] == "< 200 ms" and figure["value"] > 0, figure
        assert "median" in figure["detail"] and "rows" in figure["detail"], figure


def test_the_benchmark_calls_only_the_pipelines_public_names():
    """The benchmark is a package of its own (plugins/edw_bench): it imports no private name of emergency_dw
    (``_something``) and reads none off an emergency_dw module it imported. (That the runtime never imports
    it is lint-imports' to check: .importlinter.)"""
    import ast

    files = sorted((REPO / "plugins" / "edw_bench").glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()  # names bound to an emergency_dw module here
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "emergency_dw":
                        assert not any(p.startswith("_") for p in alias.name.split(".")), (
                            path.name,
                            alias.name,
                        )
                        modules.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "emergency_dw":
                assert not any(p.startswith("_") for p in node.module.split(".")), (path.name, node.module)
                for alias in node.names:
                    assert not alias.name.startswith("_"), f"{path.name} imports {node.module}.{alias.name}"
                    modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                assert not node.attr.startswith("_"), f"{path.name} uses {node.value.id}.{node.attr}"


def test_the_command_line_loads_the_benchmark_only_for_edw_bench():
    code = "import sys, emergency_dw.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'edw_bench'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "emergency_dw.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "{load,validation,volume,history,city_day,bi}" in out.stdout, out.stdout
