"""The benchmark harness keeps working: a tiny run on both warehouses prints and writes its figures with their
targets, side by side where both have them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import POSTGRES_URL

REPO = Path(__file__).resolve().parents[1]


CITY_DAY = "city-day: pipeline work, extract -> marts"
ON_BOTH = (  # figures of the history, city-day and bi stages, measured on each warehouse
    "history: days ingested and built one by one",
    "history: records ingested daily",
    "history: pipeline work",
    "incremental build: day 1 vs day 1",
    "city-day: dbt build",
    CITY_DAY,
    "peak memory: history (PSS)",
    "peak memory: city-day (PSS)",
)


def _databases() -> set[str]:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        return {row[0] for row in conn.execute("select datname from pg_database")}


def _drop(database: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database}" with (force)')


def _row(stdout: str, name: str) -> list[str]:
    """The cells of a printed table's row whose first cell is ``name``, a cell's lines joined by newlines."""
    lines = stdout.splitlines()

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split("[│┃]", line.strip().strip("│┃"))]

    for i, line in enumerate(lines):
        row = cells(line)
        if row and row[0] == name:
            for more in lines[i + 1 :]:  # the row's other lines: a wrapped cell, its first cell empty
                extra = cells(more)
                if not more.lstrip().startswith("│") or len(extra) != len(row) or extra[0]:
                    break
                row = [f"{a}\n{b}" if b else a for a, b in zip(row, extra, strict=True)]
            return row
    raise AssertionError(f"no row {name!r} in:\n{stdout[-6000:]}")


TINY_FEEDS = ("power_load_readings", "alerts_110", "dispatch_records")


@pytest.mark.postgres
def test_bench_at_a_tiny_scale_on_both_warehouses(tmp_path: Path):
    database = f"edw_bench_test_{uuid.uuid4().hex[:8]}"  # not the default: a bench of its own may be running
    env = dict(
        os.environ,
        EDW_DATA_DIR=str(tmp_path / "data"),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
    )
    for name in ("EDW_WAREHOUSE_URL", "EDW_BENCH_TARGETS", "EDW_BI_READER_URL"):
        env.pop(name, None)  # bench.toml's targets; the bench's own warehouses
    # one day of history, no backfill, three feeds: the history, city-day and bi stages run twice (DuckDB,
    # Postgres)
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "emergency_dw.cli",
                "bench",
                "--scale",
                "0.005",
                "--days",
                "1",
                "--backfill-days",
                "0",
                # every stage but the volume (a day of ingest and a build more: the file's time budget)
                *("--stage", "load", "--stage", "validation"),
                *("--stage", "history", "--stage", "city_day", "--stage", "bi"),
                # the history and city-day of three feeds (a power feed, calls and their dispatches): every
                # feed's DAG run is an Airflow run of a few seconds, the harness is the same for 3 or 41
                *(arg for feed in TINY_FEEDS for arg in ("--feed", feed)),
                "--postgres-url",
                POSTGRES_URL,
                "--postgres-database",
                database,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        # the benchmark's database is gone, and the user was told
        assert database not in _databases()
    finally:
        _drop(database)
    assert "warehouses duckdb, postgres" in out.stdout, out.stdout[:2000]
    assert f"postgres: database {database} on 127.0.0.1:5432 dropped" in out.stdout.replace("\n", " ")
    latest = json.loads((tmp_path / "data" / "bench" / "latest.json").read_text())
    assert latest["warehouses"] == ["duckdb", "postgres"]
    assert all("warehouse" in f for f in latest["figures"])
    by_key = {(f["name"], f["warehouse"]): f for f in latest["figures"]}
    names = {f["name"] for f in latest["figures"]}
    assert {
        "load vs bare ingest",
        "load vs to_sql",
        "validation: power suite",
        "load: DataFrame.to_sql vs bare ingest",
        "load: ANALYZE of the batch's partition",
        "peak memory: largest ingest task process (RSS)",
        "peak memory: build process (RSS)",
        "peak memory: load and validation stages (RSS)",
    } <= names
    assert by_key[("load vs bare ingest", "postgres")]["value"] > 0
    from emergency_dw.reports.bi_queries import bi_queries

    both = [*ON_BOTH, *(f"bi: {q.name} (p95)" for q in bi_queries())]
    for name in both:  # each figure of these stages, once per warehouse
        assert (name, "duckdb") in by_key and (name, "postgres") in by_key, name
    # the same simulated days reached both warehouses
    records = [by_key[("history: records ingested daily", w)]["value"] for w in ("duckdb", "postgres")]
    assert records[0] == records[1] > 0, records
    # of the feeds asked for only, and the figures say so
    assert by_key[("history: records ingested daily", "duckdb")]["detail"].startswith(
        "feeds " + ", ".join(TINY_FEEDS)
    )
    assert "with every feed only" in by_key[(CITY_DAY, "postgres")]["detail"]
    # the city-day's targets: each warehouse's, and Postgres against DuckDB; shown, judged at full scale only
    duck, pg = by_key[(CITY_DAY, "duckdb")], by_key[(CITY_DAY, "postgres")]
    assert (duck["target"], pg["target"]) == ("< 60 s", "< 120 s")
    assert duck["met"] is None and pg["met"] is None
    ratio = by_key[(f"{CITY_DAY}: Postgres/DuckDB", "postgres")]
    assert ratio["target"] == "<= 2x" and ratio["met"] is None
    assert ratio["value"] == pytest.approx(pg["value"] / duck["value"])
    for warehouse in ("duckdb", "postgres"):
        growth = by_key[("incremental build: day 1 vs day 1", warehouse)]
        assert growth["target"] == "<= 1.2x", growth
        for query in bi_queries():
            figure = by_key[(f"bi: {query.name} (p95)", warehouse)]
            assert figure["target"] == "< 200 ms" and figure["value"] > 0, figure
            assert "median" in figure["detail"] and "rows" in figure["detail"], figure
            # these feeds leave the risk, hazard and evaluation marts empty: such a query is not judged
            found = int(re.search(r"([\d,]+) rows;", figure["detail"]).group(1).replace(",", ""))
            assert (figure["met"] is None) == (found == 0), figure
            assert ("not judged" in figure["detail"]) == (found == 0), figure
        answers = [by_key[(f"bi: {q.name} (p95)", warehouse)]["met"] for q in bi_queries()]
        assert None in answers and True in answers, answers
        together = by_key[("peak memory: history (PSS)", warehouse)]
        assert together["target"] == "< 2048 MiB"
        assert (
            together["value"]
            >= 0.5 * by_key[("peak memory: largest ingest task process (RSS)", None)]["value"]
        )
    # what the user reads: both warehouses side by side with their ratio, the targets, the other figures
    assert (
        "Postgres/DuckDB" in out.stdout and "load vs bare ingest" in out.stdout and "written to" in out.stdout
    )
    header = _row(out.stdout, "figure")
    assert header == ["figure", "DuckDB", "Postgres", "Postgres/DuckDB", "target", "met"], header
    row = _row(out.stdout, CITY_DAY)
    assert row[1:4] == [f"{duck['value']:,.2f} s", f"{pg['value']:,.2f} s", f"{ratio['value']:,.2f}x"], row
    assert row[4].splitlines() == ["DuckDB < 60 s", "Postgres < 120 s", "ratio <= 2x"], row
    assert row[5] == "", row  # a tiny scale: shown, not judged
    row = _row(out.stdout, "history: records ingested daily")
    assert row[3] == "1.00x", row
    assert _row(out.stdout, "load vs bare ingest")[3] == "<= 1.25x"  # the others print as before


def test_without_postgres_the_bench_runs_duckdb_and_says_why(monkeypatch, capsys):
    """A --postgres-url that does not answer: asked for no warehouse, the history, city-day and bi stages
    run on DuckDB only and the load stage is left out, each said with the reason; asked for Postgres,
    the bench stops before any work. (The stages themselves are the test above's: stubbed here.)"""
    import edw_bench
    from edw_bench import Figure
    from emergency_dw import cli

    runs: list[dict] = []

    def run_bench(postgres_url, **kwargs):
        runs.append(kwargs)
        return [Figure(CITY_DAY, 12.5, "s", "< 60 s", None, "", "duckdb")]

    monkeypatch.setattr(edw_bench, "run_bench", run_bench)
    monkeypatch.setenv("COLUMNS", "250")
    nowhere = "postgresql://postgres@127.0.0.1:1/postgres"
    assert cli.main(["bench", "--scale", "0.005", "--postgres-url", nowhere]) == 0
    said = capsys.readouterr().out.replace("\n", " ")
    assert runs[0]["warehouses"] == ("duckdb",), runs
    assert "load" not in runs[0]["stages"] and "history" in runs[0]["stages"], runs
    reason = "the Postgres at 127.0.0.1:1 (--postgres-url) is unreachable (OperationalError:"
    assert reason in said and "the history, city-day and bi stages run on DuckDB only" in said, said
    assert "the load stage is left out" in said and "warehouses duckdb" in said, said
    assert "Postgres/DuckDB" not in said and CITY_DAY in said, said  # DuckDB's figures, as they always print
    assert cli.main(["bench", "--warehouse", "postgres", "--postgres-url", nowhere]) == 2
    assert "--warehouse postgres: " + reason in capsys.readouterr().out.replace("\n", " ")
    assert len(runs) == 1


@pytest.mark.postgres
def test_the_bench_database_is_made_anew_and_dropped_unless_kept():
    import sqlalchemy as sa

    from edw_bench.warehouses import bench_database

    name = f"edw_bench_test_{uuid.uuid4().hex[:8]}"
    said: list[str] = []
    try:
        with bench_database(POSTGRES_URL, name, False, said.append) as url:
            with sa.create_engine(url).begin() as conn:
                conn.execute(sa.text("create table left_behind (x int)"))
            assert name in _databases()
        assert name not in _databases() and said[-1].startswith(f"postgres: database {name} ")
        assert "dropped" in said[-1]
        with bench_database(POSTGRES_URL, name, True, said.append) as url:  # --keep-postgres
            pass
        assert name in _databases() and "kept (--keep-postgres)" in said[-1]
        with bench_database(POSTGRES_URL, name, True, said.append) as url:  # a kept one is made anew
            assert "dropped first" in said[-1]
            with sa.create_engine(url).connect() as conn:
                assert conn.execute(sa.text("select to_regclass('left_behind')")).scalar() is None
    finally:
        _drop(name)


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
    assert "{load,validation,volume,history,city_day,bi,scheduler}" in out.stdout, out.stdout


SCHEDULER_FEEDS = ("alerts_110", "dispatch_records")  # what fct_incident_response needs


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_scheduler_stage_runs_the_day_through_airflow_and_builds_the_marts(tmp_path: Path):
    """The scheduler stage at a tiny scale, one build mode, three feeds (one of them fails its batch):
    Airflow's scheduler makes each feed's run of the day due, warehouse__build runs on their Assets, waits
    for them and builds the day once; the figures are there, positive, consistent (overhead = wall - the
    larger of the critical path and the work over the slots), the failed feed is named, the response marts
    hold rows, and the stage's databases are gone."""
    from edw_bench.scheduler import SCHEDULER_FIGURES
    from emergency_dw.simulator.scenario import DEFAULT_SCENARIO

    # a third feed whose department renames a column every day: its run fails its batch, the day builds
    scenario = DEFAULT_SCENARIO.read_text(encoding="utf-8")
    assert scenario.count("days_of_month = [7, 21]") == 1, "the planted rename of flood_prone_roads moved"
    drifting = tmp_path / "scenario.toml"
    drifting.write_text(scenario.replace("days_of_month = [7, 21]", f"days_of_month = {list(range(1, 32))}"))
    env = dict(os.environ, EDW_DATA_DIR=str(tmp_path / "data"), AIRFLOW_HOME=str(tmp_path / "airflow"))
    for name in ("EDW_WAREHOUSE_URL", "EDW_BENCH_TARGETS", "EDW_BUILD_MODE"):
        env.pop(name, None)
    env["COLUMNS"] = "200"
    env["EDW_SIM_SCENARIO"] = str(drifting)
    before = _databases()
    command = [sys.executable, "-m", "emergency_dw.cli", "bench", "--stage", "scheduler", "--scale", "0.005"]
    command += ["--build-mode", "build", "--postgres-url", POSTGRES_URL]
    for feed in (*SCHEDULER_FEEDS, "flood_prone_roads"):
        command += ["--feed", feed]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    left = {d for d in _databases() - before if d.startswith(("edw_bench_scheduler", "edw_bench_airflow"))}
    assert not left, f"the stage left databases behind: {left}"
    assert "Airflow's scheduler runs the day on Postgres" in out.stdout, out.stdout[-3000:]
    latest = json.loads((tmp_path / "data" / "bench" / "latest.json").read_text())
    found = {f["name"]: f for f in latest["figures"]}
    value = {what: found[f"scheduler [build]: {what}"]["value"] for what in SCHEDULER_FIGURES}
    assert all(v > 0 for v in value.values()), value
    assert value["critical path"] <= value["day end -> marts"], value
    from edw_bench import targets

    least = max(value["critical path"], value["task work"] / targets()["scheduler"]["parallelism"])
    assert abs(value["day end -> marts"] - least - value["scheduler overhead"]) < 0.01, value
    # three ingest runs of two tasks, at least one build of two tasks, worked at least as long as the critical path
    assert value["task work"] >= value["critical path"] * 0.99, value
    wall = found["scheduler [build]: day end -> marts"]["detail"]
    assert "1 ingest run(s) failed their batch" in wall and "ingest__flood_prone_roads" in wall, wall
    # the first feed's batch starts a build that waits for the other feeds: the day is built once, and a
    # run its events start after it finds nothing new
    runs = found["scheduler [build]: warehouse__build runs"]
    skipped = int(re.search(r"(\d+) of them skipped", runs["detail"]).group(1))
    assert runs["value"] - skipped == 1, runs
    marts = found["scheduler [build]: marts holding rows"]["detail"]
    rows = dict(re.findall(r"(fct_incident_response|agg_response_times_daily) ([\d,]+) rows", marts))
    assert set(rows) == {"fct_incident_response", "agg_response_times_daily"}, marts
    assert all(int(n.replace(",", "")) > 0 for n in rows.values()), marts
    assert all(found[n]["warehouse"] == "postgres" for n in found if n.startswith("scheduler ["))


def test_the_scheduler_stage_runs_the_local_day_that_is_over_on_postgres_only():
    """The DAGs do not catch up: unpaused, each makes the run of the latest local day that is over, so
    that is the day the stage simulates. A run on DuckDB only leaves the stage out and says why; asking
    for it there is an error."""
    import datetime as dt

    from edw_bench import STAGES, plan_run
    from edw_bench.scheduler import day_due

    assert day_due(dt.datetime(2026, 12, 6, 15, 59, tzinfo=dt.UTC)) == dt.date(2026, 12, 5)  # 23:59 local
    assert day_due(dt.datetime(2026, 12, 6, 16, 1, tzinfo=dt.UTC)) == dt.date(2026, 12, 6)  # 00:01 local
    nowhere = "postgresql://postgres@127.0.0.1:1/postgres"
    plan = plan_run(STAGES, False, ("duckdb",), nowhere)
    assert "scheduler" not in plan.stages and "history" in plan.stages
    assert any("the scheduler stage (Airflow on Postgres) is left out" in n for n in plan.notes), plan.notes
    plan = plan_run(STAGES, False, None, nowhere)  # Postgres unreachable
    assert "scheduler" not in plan.stages
    assert any(n.endswith("the scheduler stage is left out") for n in plan.notes), plan.notes
    with pytest.raises(RuntimeError, match="the scheduler stage runs on Postgres"):
        plan_run(("scheduler",), True, ("duckdb",), nowhere)
    with pytest.raises(
        RuntimeError, match="the scheduler stage runs on Postgres: the Postgres at 127.0.0.1:1"
    ):
        plan_run(("scheduler",), True, None, nowhere)
