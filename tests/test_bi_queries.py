"""The queries BI tools send (plugins/emergency_dw/reports/bi_queries.sql) are real: at least ten, one
statement each, reading the marts only, covering every mart the exposures' dashboards depend on, and each
runs on the warehouse `edw run` leaves, the dashboards' headline ones with rows. (As bi_reader on Postgres:
tests/test_grants.py; timed at scale: `edw bench`, stage bi.)"""

from __future__ import annotations

import re

import duckdb
import pytest
import yaml

from emergency_dw.reports.bi_queries import bi_queries
from emergency_dw.transform import DBT_PROJECT

HEADLINES = (
    "response_week_by_channel",
    "response_day_by_town",
    "risk_levels_latest_day",
    "riskiest_enterprises_latest_day",
)


def test_the_list_holds_ten_queries_of_the_marts_covering_the_dashboards():
    queries = bi_queries()
    assert len(queries) >= 10 and len({q.name for q in queries}) == len(queries)
    for query in queries:
        relations = re.findall(r"\b(?:from|join)\s+(\w+)\.(\w+)", query.sql, re.I)
        assert relations and {schema for schema, _ in relations} == {"marts"}, (query.name, relations)
    exposures = yaml.safe_load((DBT_PROJECT / "models" / "exposures.yml").read_text())["exposures"]
    read = " ".join(q.sql for q in queries)
    for exposure in exposures:
        for ref in exposure["depends_on"]:
            model = re.search(r"ref\('(\w+)'\)", ref).group(1)
            assert f"marts.{model}" in read, f"{exposure['name']} reads {model}, which no BI query does"


@pytest.mark.timeout(900)
def test_every_query_runs_on_the_warehouse_edw_run_leaves(edw_run):
    assert edw_run.returncode == 0, edw_run.output[-3000:]
    con = duckdb.connect(str(edw_run.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = {q.name: con.execute(q.sql).fetchall() for q in bi_queries()}
    finally:
        con.close()
    for name in HEADLINES:
        assert rows[name], f"{name} returned nothing on a day of the simulated city"
