"""The report pages `edw run` wrote (audit, situation map, response times), opened in headless Chromium
from the file system as a reader would: each shows the warehouse's own numbers (recomputed here with plain
SQL on the DuckDB file), works offline, and shows no personal data; and the same pages and summary read a
Postgres warehouse."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pytest

from emergency_dw.catalog import all_feeds
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.reports import geo
from emergency_dw.reports.pages import build_report_pages
from emergency_dw.reports.report_settings import DEFAULT_SETTINGS, load_report_settings
from emergency_dw.reports.summary import collect_run_summary
from emergency_dw.transform import DBT_PROJECT, run_dbt

from browser import Rendered, render
from conftest import DAY, EdwRun
from databases import postgres_database

pytestmark = pytest.mark.slow
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


class Rows(HTMLParser):
    """The rows of a table (by id) as lists of cell texts, with each row's attributes."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or attrs.get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append((attrs, []))
        elif self.depth and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(dom: str, table_id: str) -> list[tuple[dict, list[str]]]:
    parser = Rows(table_id)
    parser.feed(dom)
    assert parser.rows, f"no table #{table_id} on the page"
    return parser.rows


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def run(edw_run: EdwRun) -> EdwRun:
    assert edw_run.returncode == 0, f"edw run failed (exit {edw_run.returncode}):\n{edw_run.output[-6000:]}"
    return edw_run


@pytest.fixture(scope="module")
def db(run: EdwRun):
    conn = duckdb.connect(str(run.data_dir / "warehouse.duckdb"), read_only=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-screenshots")


def open_page(run: EdwRun, shots: Path, page: str) -> Rendered:
    path = run.data_dir / "docs" / page / "index.html"
    assert path.exists(), f"edw run wrote no {path}"
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), f"{page} links to the network"
    assert "<script" not in html.lower()
    rendered = render(path.as_uri(), shots / f"{page}.png", window=(1400, 1400))
    assert rendered.screenshot.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    assert not PHONE.search(rendered.text) and not ID_NUMBER.search(rendered.text), f"personal data on {page}"
    assert "cannot be drawn yet" not in rendered.text
    return rendered


def test_audit_page_shows_every_batch_reconciled(run: EdwRun, shots: Path, db) -> None:
    page = open_page(run, shots, "audit")
    batches = db.execute(
        "select feed, rows_extracted, rows_loaded, rows_quarantined, rows_rejected, status from audit.batches"
    ).df()
    rows = {attrs["data-feed"]: cells for attrs, cells in table(page.dom, "batches") if "data-feed" in attrs}
    assert set(rows) == set(batches["feed"]) == {f.name for f in all_feeds()}
    for b in batches.itertuples():
        day, feed, _dept, status, extracted, loaded, quarantined, rejected, reconciles, *_ = rows[b.feed]
        assert (day, feed, status) == (DAY.isoformat(), b.feed, b.status)
        assert [number(extracted), number(loaded), number(quarantined), number(rejected)] == [
            b.rows_extracted,
            b.rows_loaded,
            b.rows_quarantined,
            b.rows_rejected,
        ]
        assert reconciles == "✓ yes"
    assert f"{len(batches)} / {len(batches)} batches reconcile" in page.text
    assert f"{int(batches['rows_quarantined'].sum()):,} rows quarantined" in page.text
    assert "No batch failed." in page.text


def test_audit_page_lists_the_builds_and_says_whether_the_marts_saw_every_batch(
    run: EdwRun, shots: Path, db
) -> None:
    page = open_page(run, shots, "audit")
    builds = db.execute(
        "select via, status, batches_seen, nodes, failed_nodes from audit.builds order by started_at desc"
    ).fetchall()
    rows = [cells for _attrs, cells in table(page.dom, "build-list")][1:]  # the first is the header
    assert [
        (via, status, number(seen), number(nodes), number(failed))
        for _, via, status, _, seen, nodes, failed in rows
    ] == builds
    assert builds and builds[0][:2] == ("edw run", "success"), builds
    assert "The last successful build saw every loaded batch." in page.text


def test_audit_page_shows_the_risk_bands_of_the_seed_and_the_reds_of_the_override(
    run: EdwRun, shots: Path, db
) -> None:
    page = open_page(run, shots, "audit")
    latest = "(select max(risk_date) from marts.fct_enterprise_risk_daily)"
    rows = {cells[0].split()[0]: cells for _attrs, cells in table(page.dom, "risk-levels")[1:]}
    bands = db.execute(
        "select risk_level, min_index, least(max_index, 100), description from reference.risk_level_thresholds"
    ).fetchall()
    assert set(rows) == {b[0] for b in bands}
    for name, low, high, description in bands:
        level, band, count, by_override, example = rows[name]
        assert band.startswith(f"{low:g}–{high:g}") and example == description, rows[name]
        want = db.execute(
            f"select count(*), count(*) filter (where level_reason = 'open_major_hazard') "
            f"from marts.fct_enterprise_risk_daily where risk_date = {latest} and risk_level = '{name}'"
        ).fetchone()
        assert [number(count), number(by_override)] == list(want), name


def test_audit_page_quarantine_by_feed_and_rule(run: EdwRun, shots: Path, db) -> None:
    page = open_page(run, shots, "audit")
    expected: dict[tuple[str, str], int] = {}
    for feed in all_feeds():
        for (rules,) in db.execute(f'select _failed_rules from quarantine."{feed.name}"').fetchall():
            for rule in json.loads(rules):
                expected[(feed.name, rule)] = expected.get((feed.name, rule), 0) + 1
    got = {(cells[0], cells[1]): number(cells[5]) for _, cells in table(page.dom, "quarantine-table")[1:]}
    assert got == expected and expected
    evaluated, failed = db.execute(
        "select count(*), count(*) filter (where not success) from audit.validation_results where skipped is null"
    ).fetchone()
    assert f"({evaluated - failed:,} of {evaluated:,})" in page.text
    failing = table(page.dom, "failing")[1:]
    assert len(failing) == failed, "one line per expectation that failed (one run each here)"
    assert "Validation history" in page.text and "power_load_readings" in page.text


def test_map_shows_risk_levels_towns_and_shelters_as_the_marts_hold_them(
    run: EdwRun, shots: Path, db
) -> None:
    page = open_page(run, shots, "map")
    latest = "(select max(risk_date) from marts.fct_enterprise_risk_daily)"
    levels = db.execute("select risk_level from reference.risk_level_thresholds order by level_rank").df()[
        "risk_level"
    ]
    counts = dict(
        db.execute(
            f"select risk_level, count(*) from marts.fct_enterprise_risk_daily where risk_date = {latest} group by 1"
        ).fetchall()
    )
    for level in levels:
        tile = re.search(rf'id="level-{level}"[^>]*>\s*<div class="v">([\d,]+)</div>', page.dom)
        assert tile, f"no tile for level {level}"
        assert number(tile.group(1)) == counts.get(level, 0), level
        assert f"{level} risk enterprises" in page.text
    # the red tile says how many are red by an open major hazard rather than by their index, and the
    # legend gives each band's index range as the seed does
    overridden = db.execute(
        f"select count(*) from marts.fct_enterprise_risk_daily where risk_date = {latest} "
        "and level_reason = 'open_major_hazard'"
    ).fetchone()[0]
    red = re.search(r'or an open major hazard \(<span class="override">([\d,]+)</span>\)', page.dom)
    assert red and number(red.group(1)) == overridden
    for name, low, high in db.execute(
        "select risk_level, min_index, least(max_index, 100) from reference.risk_level_thresholds"
    ).fetchall():
        assert re.search(rf"{name} \(\S+\) risk enterprise: index {low:g}–{high:g}", page.text), name
    by_town = db.execute(
        "select e.town_code, r.risk_level, count(*) as n from marts.fct_enterprise_risk_daily r "
        f"join marts.dim_enterprise e using (enterprise_id) where r.risk_date = {latest} group by all"
    ).df()
    towns = pd.read_csv(DBT_PROJECT / "seeds" / "towns.csv", dtype={"town_code": str})
    rows = {
        attrs["data-town"]: cells for attrs, cells in table(page.dom, "towns-table") if "data-town" in attrs
    }
    assert set(rows) == set(towns["town_code"]) and len(rows) == 18
    for t in towns.itertuples():
        cells = rows[t.town_code]
        assert cells[0] == t.town_name
        assert t.town_name in page.text
        want = by_town[by_town["town_code"] == t.town_code].set_index("risk_level")["n"]
        assert [number(c) for c in cells[2 : 2 + len(levels)]] == [
            int(want.get(level, 0)) for level in levels
        ]
    placed = int(by_town.loc[by_town["town_code"].notna(), "n"].sum())
    dots = re.findall(r"<circle cx=[^>]*><title>E\d+", page.dom)
    assert len(dots) == placed, "one dot per enterprise with a town"
    unplaced = sum(counts.values()) - placed
    if unplaced:
        assert f"{unplaced} without a known town are not drawn" in page.text
    shelters, open_shelters = db.execute(
        "select count(*), count(*) filter (where is_open) from staging.stg_mzj__shelters"
    ).fetchone()
    assert f"{open_shelters:,} / {shelters:,}" in page.text
    assert (
        len(re.findall(r'<rect class="shelter', page.dom))
        == db.execute(
            "select count(*) from staging.stg_mzj__shelters where lat is not null and lon is not null"
        ).fetchone()[0]
    )
    assert "Town areas: nearest town centre" in page.text


def test_response_page_shows_the_marts_p50_p90_against_targets(run: EdwRun, shots: Path, db) -> None:
    page = open_page(run, shots, "response")
    incidents = db.execute(
        "select channel, alarm_handling_seconds, turnout_seconds, travel_seconds, response_seconds "
        "from marts.fct_incident_response where received_date = (select max(received_date) from marts.fct_incident_response)"
    ).df()
    seed = pd.read_csv(DBT_PROJECT / "seeds" / "response_targets.csv", dtype={"channel": str})
    rows = [(attrs, cells) for attrs, cells in table(page.dom, "figures-table") if "data-channel" in attrs]
    assert len(rows) == len(seed) == 12, "every channel and interval of the seed"
    for attrs, _ in rows:
        values = incidents.loc[
            incidents["channel"] == attrs["data-channel"], f"{attrs['data-interval']}_seconds"
        ]
        values = values.dropna().astype(float)
        row = re.search(
            rf'data-channel="{attrs["data-channel"]}" data-interval="{attrs["data-interval"]}">.*?'
            r'class="num p50" data-seconds="([^"]*)".*?class="num p90" data-seconds="([^"]*)"',
            page.dom,
            re.S,
        )
        assert row, attrs
        if len(values):
            assert float(row.group(1)) == pytest.approx(values.quantile(0.5))
            assert float(row.group(2)) == pytest.approx(values.quantile(0.9))
    for channel in ("110", "119", "120"):
        assert f"{channel} · " in page.text and f'id="channel-{channel}"' in page.dom
    assert page.text.count("target 60 s") >= 3, "each alarm-handling chart draws its target line"
    assert "target 80 s" in page.text, "119 turnout: the fire target of the seed (NFPA 1710)"


def test_pages_of_an_empty_warehouse_say_what_to_run(tmp_path: Path, shots: Path) -> None:
    pages = build_report_pages(tmp_path, f"duckdb:///{tmp_path / 'empty.duckdb'}")
    assert [p.parent.name for p in pages] == ["audit", "map", "response"]
    audit = render(pages[0].as_uri(), shots / "empty-audit.png")
    assert (
        "This report cannot be drawn yet" in audit.text
        and "audit.batches is not in the warehouse" in audit.text
    )
    map_text = pages[1].read_text(encoding="utf-8")
    assert "run `edw build`" in map_text


# Postgres: the feeds behind the response page, the shelters and the town reports, and only their marts
# (the risk mart is left unbuilt, so the map says what is missing and what to run).
PG_FEEDS = ["alerts_110", "alerts_119", "alerts_120", "dispatch_records", "shelters", "town_incident_reports"]
PG_SELECTION = (
    "+fct_incident_response +stg_mzj__shelters +stg_towns__town_incident_reports "
    "risk_level_thresholds towns response_targets"
)


@pytest.mark.postgres
def test_pages_and_summary_read_a_postgres_warehouse(simulated: Path, tmp_path: Path, shots: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(simulated, root / "sources")
    with postgres_database("edw_test_reports") as (_, url), pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
        with embedded_sources():
            for feed in PG_FEEDS:
                ingest(feed, *day_interval(DAY))
        built = run_dbt(["build", "--select", PG_SELECTION, "--indirect-selection", "buildable"])
        assert built.success, built.error or [
            r for r in built.results if r["status"] not in ("success", "pass")
        ]
        pages = build_report_pages()
        summary = collect_run_summary(url, [DAY])
        with psycopg.connect(url) as conn:
            batches = pd.DataFrame(
                conn.execute(
                    "select feed, rows_extracted, rows_loaded, rows_quarantined from audit.batches"
                ).fetchall(),
                columns=["feed", "extracted", "loaded", "quarantined"],
            )
            incidents = pd.DataFrame(
                conn.execute(
                    "select channel, response_seconds::float8 from marts.fct_incident_response where received_date = %s",
                    [DAY],
                ).fetchall(),
                columns=["channel", "response"],
            )
    assert sorted(f.feed for f in summary.feeds) == sorted(batches["feed"]) == sorted(PG_FEEDS)
    for f in summary.feeds:
        row = batches[batches["feed"] == f.feed].iloc[0]
        assert (f.rows_extracted, f.rows_loaded, f.rows_quarantined) == (
            row.extracted,
            row.loaded,
            row.quarantined,
        )
    for channel in summary.response:
        response = next(i for i in channel.intervals if i.interval == "response")
        values = incidents.loc[incidents["channel"] == channel.channel, "response"].dropna()
        assert response.measured == len(values) > 0
        assert response.p90_seconds == pytest.approx(values.quantile(0.9))
    assert any("marts.fct_enterprise_risk_daily is not in the warehouse" in p for p in summary.problems)

    audit = render(pages[0].as_uri(), shots / "postgres-audit.png")
    rows = {attrs["data-feed"]: cells for attrs, cells in table(audit.dom, "batches") if "data-feed" in attrs}
    assert set(rows) == set(PG_FEEDS)
    for row in batches.itertuples():
        assert number(rows[row.feed][4]) == row.extracted and number(rows[row.feed][5]) == row.loaded
    map_page = render(pages[1].as_uri(), shots / "postgres-map.png")
    assert "cannot be drawn yet" in map_page.text and "run `edw build`" in map_page.text
    response_page = render(pages[2].as_uri(), shots / "postgres-response.png")
    for channel in summary.response:
        p90 = next(i for i in channel.intervals if i.interval == "response").p90_seconds
        cell = re.search(
            rf'data-channel="{channel.channel}" data-interval="response">.*?class="num p90" data-seconds="([^"]*)"',
            response_page.dom,
            re.S,
        )
        assert cell and float(cell.group(1)) == pytest.approx(p90)


def test_each_enterprise_is_drawn_inside_its_own_town_at_a_stable_spot() -> None:
    towns = pd.read_csv(DBT_PROJECT / "seeds" / "towns.csv", dtype={"town_code": str})
    projection = geo.projection_for(list(zip(towns["lon"], towns["lat"], strict=True)), 960, 760, 0.045)
    sites = [projection.plane(lon, lat) for lon, lat in zip(towns["lon"], towns["lat"], strict=True)]
    cells = geo.voronoi_cells(sites, geo.buffered_hull(sites, 0.045))
    assert all(len(cell) >= 3 for cell in cells), "every town has an area"
    for k, (site, cell) in enumerate(zip(sites, cells, strict=True)):
        for n in range(50):
            point = geo.place_in_cell(f"E{n:06d}", site, cell, 0.82)
            assert point == geo.place_in_cell(f"E{n:06d}", site, cell, 0.82)
            assert geo.inside(point, cell), towns["town_name"][k]
            others = [j for j, other in enumerate(cells) if j != k and geo.inside(point, other)]
            assert not others, f"a dot of {towns['town_name'][k]} falls in {towns['town_name'][others[0]]}"


def test_a_risk_level_without_a_colour_names_the_settings_file(tmp_path: Path) -> None:
    text = (DEFAULT_SETTINGS.read_text(encoding="utf-8")).replace('red = "#d62728"\n', "")
    (tmp_path / "reports.toml").write_text(text, encoding="utf-8")
    settings = load_report_settings(tmp_path / "reports.toml")
    with pytest.raises(
        ValueError, match=r"risk level 'red' .* has no colour in \[levels\] of .*reports.toml"
    ):
        settings.level_colour("red")
    with pytest.raises(FileNotFoundError, match="EDW_REPORTS_SETTINGS"):
        load_report_settings(tmp_path / "missing.toml")
