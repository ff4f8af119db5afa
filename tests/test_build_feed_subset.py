"""`edw build` on a warehouse where only some feeds were ever ingested (a county starting with its response
feeds): the raw tables of the others are created empty from the catalog, the build passes, and it says
which feeds never loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emergency_dw import catalog, cli
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.warehouse import connect

from conftest import DAY

RESPONSE_FEEDS = ["alerts_110", "alerts_119", "alerts_120", "dispatch_records"]

pytestmark = pytest.mark.slow


def test_build_with_only_the_response_feeds_ingested(
    simulated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    shutil.copytree(simulated, tmp_path / "data" / "sources")
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EDW_WAREHOUSE_URL", f"duckdb:///{warehouse}")
    monkeypatch.setenv("COLUMNS", "400")
    with embedded_sources():
        for feed in RESPONSE_FEEDS:
            ingest(feed, *day_interval(DAY))

    assert cli.main(["build"]) == 0, capsys.readouterr().out[-4000:]
    out = " ".join(capsys.readouterr().out.split())
    never = [f.name for f in catalog.FEEDS if f.name not in RESPONSE_FEEDS]
    assert f"{len(never)} of {len(catalog.FEEDS)} feeds never loaded" in out
    assert ", ".join(never) in out, "the build names every feed never loaded"
    assert "raw tables created empty from the catalog" in out and "dbt build passed" in out

    conn = connect(f"duckdb:///{warehouse}")

    def count(relation: str) -> int:
        return conn.query(f"select count(*) as n from {relation}").to_pylist()[0]["n"]

    try:
        assert count("raw.schools") == 0 and count("staging.stg_jyj__schools") == 0
        incidents = count("marts.fct_incident_response")
    finally:
        conn.close()
    assert incidents > 0, "the response marts hold the feeds that did load"

    # a second build creates nothing more and still says which feeds never loaded
    assert cli.main(["build"]) == 0
    again = " ".join(capsys.readouterr().out.split())
    assert "raw tables created empty" not in again and f"{len(never)} of" in again
