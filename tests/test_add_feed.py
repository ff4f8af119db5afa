"""Adding a feed, the way the README's "Add a feed" says: in a copy of the project, a new feed of the Civil
Affairs Bureau (mzj) is declared in its department's module and its staging is written by
tools/generate_staging.py. That is four files, and nothing else is needed for the feed to run end to end:
its ingest DAG, its expectation suite (its window rules too, from what the feed is), the simulator's rows, an
ingested batch and its staging model built by dbt on DuckDB, all in the copy."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emergency_dw.catalog.model import MAX_AHEAD_DAYS, REFERENCE_MAX_AGE_DAYS

from conftest import DAY

ROOT = Path(__file__).resolve().parents[1]
FEED = "relief_supply_depots"
NOUN = "救灾物资储备库"
DECLARATION = f"""\
    Feed(
        "{FEED}",
        "mzj",
        "Relief supply depots and what they hold",
        api("mzj", "{FEED}"),
        primary_key=("depot_id",),
        snapshot=True,
        rows_per_day=120,
        name_noun_zh="{NOUN}",
        columns=(
            key("depot_id"),
            string("name", nullable=False),
            town(),
            lat(),
            lon(),
            integer("tents", nullable=False, min=0, max=5_000),
            integer("quilts", min=0, max=50_000),
            person("keeper_name"),
            phone("keeper_phone"),
            updated_at(),
        ),
        tags=("shelter",),
    ),
"""
# The files a new feed of an existing department touches (git status in the copy).
TOUCHED = {
    "plugins/emergency_dw/catalog/feeds/mzj.py": "M",
    f"dbt_project/models/staging/mzj/stg_mzj__{FEED}.sql": "A",
    "dbt_project/models/staging/mzj/_mzj__sources.yml": "M",
    "dbt_project/models/staging/mzj/_mzj__models.yml": "M",
}

# Run in the copy, by the copy's code: what follows from the declaration alone.
END_TO_END = """
import datetime as dt, json, os, sys
from pathlib import Path

import emergency_dw
from emergency_dw.catalog import get_feed
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.pipeline.suites import load_suite
from emergency_dw.simulator.run import Simulator
from emergency_dw.transform import run_dbt
from emergency_dw.warehouse import connect

copy, name, day = Path(sys.argv[1]), sys.argv[2], dt.date.fromisoformat(sys.argv[3])
assert Path(emergency_dw.__file__).is_relative_to(copy), emergency_dw.__file__
feed = get_feed(name)
out = {}

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=str(copy / "dags"), safe_mode=True)
dag = bag.dags.get(f"ingest__{name}")
out["dag_errors"] = {str(k): str(v)[:500] for k, v in bag.import_errors.items()}
out["dag"] = dag and {"tags": sorted(dag.tags), "tasks": [t.task_id for t in dag.tasks]}

suite = load_suite(feed)
out["suite"] = {"generated": [r["name"] for r in suite["generated_from_catalog"]], "rules": suite["rules"],
                "windows": {r["name"]: r["window"] for r in suite["generated_from_catalog"] if "window" in r}}

frame = Simulator(copy / "data" / "sources", scale=0.02).delivery(feed, day)[0]
out["simulated"] = {"rows": len(frame), "names": frame["name"].head(3).tolist()}
Simulator(copy / "data" / "sources", scale=0.02).simulate_day(day, feeds=[name])

with embedded_sources():
    batch = ingest(name, *day_interval(day))
out["batch"] = {"status": batch.status, "loaded": batch.rows_loaded, "error": batch.error}

# the model, its tests and the seed its town codes are checked against (not the tests of the seed's other users)
run = run_dbt(["build", "--select", f"towns source:mzj.{name} stg_mzj__{name}", "--indirect-selection", "cautious"])
out["dbt_nodes"] = sorted(r["node"].split(".")[2] for r in run.results)
out["dbt"] = {"success": run.success, "error": run.error,
              "failed": [r for r in run.results if r["status"] not in ("success", "pass")]}
warehouse = connect(os.environ["EDW_WAREHOUSE_URL"])
try:
    rows = warehouse.query(
        f"select count(*) as n, count(distinct depot_id) as keys, min(keeper_phone_hash) as phone "
        f"from staging.stg_mzj__{name}"
    ).to_pylist()[0]
    out["staging"] = {**rows, "raw_keys": warehouse.query(
        f"select count(distinct depot_id) as n from raw.{name}").to_pylist()[0]["n"]}
    out["window_results"] = warehouse.query(
        "select rule, success, skipped from audit.validation_results where feed = ? and rule like '%_in_window'",
        [name],
    ).to_pylist()
finally:
    warehouse.close()
print("RESULT " + json.dumps(out, ensure_ascii=False, default=str))
"""

pytestmark = pytest.mark.slow


def _copy_project(dst: Path) -> None:
    """What adding and running a feed reads: the product, the DAG files, dbt, the suites, the tools."""
    skip = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages", "*.pyc")
    for folder in ("plugins", "dags", "dbt_project", "expectations", "tools"):
        shutil.copytree(ROOT / folder, dst / folder, ignore=skip)
    for name in (".gitignore", "pyproject.toml"):
        shutil.copy2(ROOT / name, dst / name)


def _git(copy: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        cwd=copy,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _declare(module: Path, declaration: str, helpers: set[str]) -> None:
    """Add a feed at the end of a department's ``FEEDS`` and the column shorthands it uses to the module's
    ``from ..columns import ...``, as a person would."""
    text = module.read_text(encoding="utf-8")
    tree = ast.parse(text)
    [imported] = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "columns"]
    names = sorted({a.name for a in imported.names} | helpers)
    lines = text.splitlines(keepends=True)
    new_import = f"from ..columns import {', '.join(names)}\n"
    lines[imported.lineno - 1 : imported.end_lineno] = [new_import]
    text = "".join(lines)
    assert text.endswith(")\n"), f"{module} does not end with its FEEDS tuple"
    module.write_text(text[: -len(")\n")] + declaration + ")\n", encoding="utf-8")


def test_a_new_feed_is_four_files_and_runs_end_to_end(tmp_path: Path):
    copy = tmp_path / "project"
    _copy_project(copy)
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "the project as it is")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EDW_", "AIRFLOW", "PYTHONPATH")) or k == "EDW_PII_SALT"
    }
    env.update(
        PYTHONPATH=str(copy / "plugins"),
        EDW_DATA_DIR=str(copy / "data"),
        EDW_WAREHOUSE_URL=f"duckdb:///{copy / 'data' / 'warehouse.duckdb'}",
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )

    # 1. declare the feed in its department's module; 2. write its staging with the tool
    _declare(
        copy / "plugins/emergency_dw/catalog/feeds/mzj.py",
        DECLARATION,
        {"integer", "key", "lat", "lon", "person", "phone", "string", "town", "updated_at"},
    )
    subprocess.run(
        [sys.executable, "tools/generate_staging.py"], cwd=copy, env=env, check=True, capture_output=True
    )
    _git(copy, "add", "-A")
    status = _git(copy, "status", "--porcelain")
    touched = {line[3:]: line[0] for line in status.splitlines()}
    assert touched == TOUCHED, f"adding a feed touched {sorted(touched)}"
    diff = _git(copy, "diff", "--cached", "--", "dbt_project")
    assert f"source('mzj', '{FEED}')" in diff and "hash_pii('keeper_phone')" in diff

    # what follows from the catalog, without another file
    ran = subprocess.run(
        [sys.executable, "-c", END_TO_END, str(copy), FEED, DAY.isoformat()],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in ran.stdout.splitlines() if line.startswith("RESULT ")]
    assert ran.returncode == 0 and lines, ran.stdout[-3000:] + ran.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))

    assert out["dag_errors"] == {}
    assert out["dag"] == {
        "tags": sorted(["ingest", "mzj", "http_json", "shelter"]),
        "tasks": ["extract_and_land", "validate_and_load"],
    }
    assert {"unique_key", "not_null__depot_id", "in_set__town_code", "range__tents"} <= set(
        out["suite"]["generated"]
    )
    assert out["suite"]["rules"] == []  # no hand-written rules: no suite file needed
    # a snapshot of reference data: its updates may lie years back (no event time, so no event_time window)
    assert out["suite"]["windows"] == {
        "updated_at_in_window": {
            "column": "updated_at",
            "days_before": REFERENCE_MAX_AGE_DAYS,
            "days_after": MAX_AHEAD_DAYS,
        }
    }
    assert out["window_results"] == [{"rule": "updated_at_in_window", "success": True, "skipped": None}]
    assert out["simulated"]["rows"] == 120
    assert all(NOUN in name for name in out["simulated"]["names"]), out["simulated"]
    assert out["batch"]["status"] == "loaded" and out["batch"]["loaded"] > 100, out["batch"]
    assert out["dbt"]["success"] and not out["dbt"]["failed"], out["dbt"]
    assert f"stg_mzj__{FEED}" in out["dbt_nodes"]
    # a re-delivered feed: its key and town codes are tested on the raw table's latest loads (the view keeps
    # one row per key by construction, as the next lines check)
    for test in (
        f"source_not_null_in_latest_loads_mzj_{FEED}_depot_id",
        f"source_relationships_in_latest_loads_mzj_{FEED}_town_code",
    ):
        assert any(node.startswith(test) for node in out["dbt_nodes"]), (test, out["dbt_nodes"])
    staging = out["staging"]
    assert staging["n"] == staging["keys"] == staging["raw_keys"] > 100  # one row per depot, the latest
    assert len(staging["phone"]) == 64  # hashed, never the clear phone
