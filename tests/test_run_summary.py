"""`edw run` (the real CLI, as `make run` calls it) on a tiny simulated day: it succeeds, and the summary it
prints and writes to run_summary.json holds the numbers the warehouse holds, each recomputed here with
plain SQL and pandas straight from the DuckDB file (not through the reports' own queries)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from emergency_dw.catalog import all_feeds
from emergency_dw.reports.summary import collect_run_summary
from emergency_dw.transform import DBT_PROJECT

from conftest import DAY, EdwRun

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(edw_run: EdwRun) -> EdwRun:
    assert edw_run.returncode == 0, f"edw run failed (exit {edw_run.returncode}):\n{edw_run.output[-6000:]}"
    return edw_run


@pytest.fixture(scope="module")
def summary(run: EdwRun) -> dict:
    path = run.data_dir / "run_summary.json"
    assert path.exists(), f"edw run wrote no {path}"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def db(run: EdwRun):
    conn = duckdb.connect(str(run.data_dir / "warehouse.duckdb"), read_only=True)
    yield conn
    conn.close()


def test_rows_per_feed_equal_audit_batches(summary: dict, db, run: EdwRun) -> None:
    expected = db.execute(
        "select feed, count(*) as batches, sum(rows_extracted) as extracted, sum(rows_loaded) as loaded, "
        "sum(rows_quarantined) as quarantined, sum(rows_rejected) as rejected from audit.batches group by feed"
    ).df()
    got = {f["feed"]: f for f in summary["feeds"]}
    from emergency_dw.catalog import all_feeds

    catalog = {feed.name for feed in all_feeds()}
    assert set(got) == set(expected["feed"]) == catalog, "every catalog feed has its batch in the summary"
    for row in expected.itertuples():
        feed = got[row.feed]
        assert (feed["batches"], feed["rows_extracted"], feed["rows_loaded"]) == (
            row.batches,
            row.extracted,
            row.loaded,
        ), row.feed
        assert (feed["rows_quarantined"], feed["rows_rejected"]) == (row.quarantined, row.rejected), row.feed
        assert feed["reconciles"] is True
    assert summary["totals"]["rows_extracted"] == expected["extracted"].sum()
    assert summary["totals"]["rows_quarantined"] == expected["quarantined"].sum() > 0, "defects were injected"
    assert summary["days"] == [DAY.isoformat()]
    # the printed table says the same: its totals line carries the total rows extracted
    assert f"{int(expected['extracted'].sum()):,}" in run.output
    assert "Rows per feed" in run.output


def test_validation_pass_rate_equals_validation_results(summary: dict, db, run: EdwRun) -> None:
    evaluated, passed = db.execute(
        "select count(*), count(*) filter (where success) from audit.validation_results where skipped is null"
    ).fetchone()
    v = summary["validation"]
    assert (v["expectations_evaluated"], v["expectations_passed"]) == (evaluated, passed)
    assert v["pass_rate"] == pytest.approx(passed / evaluated)
    assert 0 < v["pass_rate"] < 1, "the injected defects fail some row rules"
    assert f"{passed / evaluated:.1%}" in run.output


def test_top_enterprises_are_the_marts_most_severe(summary: dict, db, run: EdwRun) -> None:
    expected = db.execute(
        "select r.enterprise_id, cast(r.risk_index as double) as risk_index, r.risk_level, r.top_factors, "
        "e.town_name from marts.fct_enterprise_risk_daily r "
        "join reference.risk_level_thresholds t using (risk_level) "
        "left join marts.dim_enterprise e using (enterprise_id) "
        "where r.risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily) "
        "order by t.level_rank, r.risk_index desc, r.enterprise_id limit 10"
    ).df()
    top = summary["top_enterprises"]
    assert [e["enterprise_id"] for e in top] == expected["enterprise_id"].tolist()
    assert [e["risk_level"] for e in top] == expected["risk_level"].tolist()
    assert [e["risk_index"] for e in top] == pytest.approx(expected["risk_index"].tolist())
    assert [e["reasons"] for e in top] == expected["top_factors"].tolist()
    assert all(e["reasons"] for e in top), "each listed enterprise says why"
    counts = dict(
        db.execute(
            "select risk_level, count(*) from marts.fct_enterprise_risk_daily "
            "where risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily) group by 1"
        ).fetchall()
    )
    assert {k: v for k, v in summary["risk_level_counts"].items() if v} == counts
    assert expected["enterprise_id"][0] in run.output


def test_response_percentiles_per_channel_against_seed_targets(summary: dict, db) -> None:
    incidents = db.execute(
        "select channel, alarm_handling_seconds, turnout_seconds, travel_seconds, response_seconds "
        "from marts.fct_incident_response where received_date = ?",
        [DAY],
    ).df()
    seed = pd.read_csv(DBT_PROJECT / "seeds" / "response_targets.csv", dtype={"channel": str})
    targets = {(r.channel, r.interval_name): r.target_seconds for r in seed.itertuples()}
    assert [c["channel"] for c in summary["response"]] == ["110", "119", "120"]
    assert summary["response_days"] == [DAY.isoformat()]
    for channel in summary["response"]:
        rows = incidents[incidents["channel"] == channel["channel"]]
        assert channel["incidents"] == len(rows)
        assert [f["interval"] for f in channel["intervals"]] == [
            "alarm_handling",
            "turnout",
            "travel",
            "response",
        ]
        for f in channel["intervals"]:
            values = rows[f"{f['interval']}_seconds"].dropna().astype(float)
            assert f["target_seconds"] == targets[(channel["channel"], f["interval"])]
            assert f["measured"] == len(values)
            if len(values):
                assert f["p50_seconds"] == pytest.approx(values.quantile(0.5))
                assert f["p90_seconds"] == pytest.approx(values.quantile(0.9))
                assert f["within_target_share"] == pytest.approx((values <= f["target_seconds"]).mean())


def test_summary_says_where_each_output_is(summary: dict, run: EdwRun) -> None:
    outputs = summary["outputs"]
    for name in (
        "audit report",
        "situation map",
        "response times",
        "validation Data Docs",
        "dbt docs",
        "reports index",
        "run summary (JSON)",
    ):
        path = Path(outputs[name])
        assert path.exists(), f"{name}: {path}"
        assert str(path) in run.output.replace("\n", "")
    assert Path(outputs["raw lake (Parquet)"]).is_dir()
    assert outputs["warehouse"] == run.warehouse_url


def test_summary_of_an_empty_warehouse_says_what_to_run(tmp_path: Path) -> None:
    summary = collect_run_summary(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    assert summary.feeds == [] and summary.top_enterprises == [] and summary.response == []
    text = " ".join(summary.problems)
    assert "audit.batches is not in the warehouse" in text and "edw run" in text
    assert "run `edw build`" in text


def test_the_production_build_leaves_the_unit_tests_to_ci(run: EdwRun, monkeypatch) -> None:
    # `edw run` builds for production: the data tests on every build, the unit tests not
    built = next(line for line in run.output.splitlines() if "dbt build passed" in line)
    assert " tests" in built and "unit_test" not in built, built
    # `edw build --unit-tests` (and make test, through the marts' tests) runs them
    from emergency_dw import cli, transform
    from emergency_dw.transform import DbtRun

    asked: list[list[str]] = []
    monkeypatch.setattr(
        transform, "run_dbt", lambda args, **options: asked.append(args) or DbtRun(True, args, [])
    )
    monkeypatch.setattr(transform, "prepare_raw_tables", lambda: transform.RawTables([], [], 0))
    assert cli.main(["build", "--unit-tests"]) == 0 and cli.main(["build"]) == 0
    # after a seed's number changed, every incremental model rebuilds from all it reads
    assert cli.main(["build", "--full-refresh"]) == 0
    assert asked == [
        ["build"],
        ["build", "--exclude-resource-type", "unit_test"],
        ["build", "--exclude-resource-type", "unit_test", "--full-refresh"],
    ]


def test_the_build_shows_one_line_and_keeps_dbt_s_log_in_a_file(run: EdwRun) -> None:
    """`edw run` prints the dbt build as its summary line, not dbt's line per node (about 260 of them); the
    full log is in the file the summary line names."""
    node_lines = [
        line for line in run.output.splitlines() if re.search(r"\b\d+ of \d+ (START|OK|PASS)\b", line)
    ]
    assert not node_lines, node_lines[:5]
    log = run.data_dir / "dbt" / "logs" / "dbt.log"
    assert re.search(r"dbt build passed.{0,400}dbt\.log", run.output.replace("\n", "")), "the log is named"
    assert re.search(r"\b\d+ of \d+ OK created", log.read_text(encoding="utf-8")), "dbt's full log is kept"


def test_the_run_fits_on_two_screens(run: EdwRun, summary: dict) -> None:
    """`edw run` prints a line per day for its ingest DAGs, not one per feed, and lists in its summary the
    feeds that held most rows with the others summed; run_summary.json holds every feed."""
    lines = run.output.splitlines()
    assert len(lines) <= 110, f"{len(lines)} lines:\n" + run.output[-4000:]
    day = next(line for line in lines if " ingest DAGs, " in line)
    assert (
        f"{len(summary['feeds'])} ingest DAGs" in day
        and f"{summary['totals']['rows_extracted']:,} rows" in day
    )
    assert not any(re.search(r"^\s+ok\s", line) for line in lines), "no line per loaded batch"
    assert len(summary["feeds"]) == len(all_feeds()) and re.search(
        r"│ \d+ other feeds\s+│\s+\d+ │", run.output
    )


def test_the_build_is_recorded_with_the_batches_it_saw(run: EdwRun, db, tmp_path: Path) -> None:
    """audit.builds holds the run's build: how it ran, that it succeeded, the loaded batches it saw; a
    scheduled build then finds nothing new, until a batch is reloaded or another one loads."""
    import shutil

    from emergency_dw.pipeline.builds import nothing_new_since
    from emergency_dw.warehouse import connect

    builds = db.execute(
        "select via, status, batches_seen, nodes, failed_nodes, finished_at >= started_at from audit.builds"
    ).fetchall()
    loaded = db.execute("select count(*) from audit.batches where status = 'loaded'").fetchall()[0][0]
    assert len(builds) == 1 and builds[0][:3] == ("edw run", "success", loaded), builds
    assert builds[0][3] > 200 and builds[0][4] == 0 and builds[0][5], builds
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(run.data_dir / "warehouse.duckdb", copy)
    warehouse = connect(f"duckdb:///{copy}")
    try:
        assert nothing_new_since(warehouse).via == "edw run"
        with warehouse.transaction() as tx:  # one batch reloaded since: its finish time moves
            tx.execute(
                "update audit.batches set finished_at = finished_at + interval 1 second "
                "where batch_id = (select min(batch_id) from audit.batches where status = 'loaded')"
            )
        assert nothing_new_since(warehouse) is None, "a batch reloaded since the build is new"
    finally:
        warehouse.close()
