"""The auditors' reports, opened from files in headless Chromium with no network: `edw docs` writes the
Great Expectations Data Docs (an index and a page per validation run), the dbt docs and an index page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from emergency_dw.cli import main
from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.reports import data_docs
from emergency_dw.reports.site_index import write_site_index
from emergency_dw.warehouse import connect

from browser import render
from conftest import DAY

# one feed per connector kind, and one (schools) whose simulated day carries defects that fail rules
FEEDS = ["alerts_110", "dispatch_records", "schools", "enterprise_registry"]
REMOTE = re.compile(
    r"""<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)|url\(['"]?((?:https?:)?//[^'")]+)""",
    re.I,
)
LOCAL_REF = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"'#][^"']*)["']""", re.I)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(simulated: Path, tmp_path_factory: pytest.TempPathFactory):
    """A few feeds' batches of the simulated day ingested into a DuckDB warehouse, then `edw docs`."""
    root = tmp_path_factory.mktemp("reports")
    shutil.copytree(simulated, root / "data" / "sources")
    url = f"duckdb:///{root / 'data' / 'warehouse.duckdb'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDW_DATA_DIR", str(root / "data"))
        mp.setenv("EDW_WAREHOUSE_URL", url)
        mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
        start, end = day_interval(DAY)
        with embedded_sources():
            for feed in FEEDS:
                ingest(feed, start, end)
        assert main(["docs"]) == 0
        yield {"docs": root / "data" / "docs", "url": url, "root": root}


def _validation_results(url: str) -> list[dict]:
    warehouse = connect(url)
    try:
        return warehouse.query(
            "select batch_id, feed, rule, success, unexpected_count, skipped, expectation "
            "from audit.validation_results order by feed, rule"
        ).to_pylist()
    finally:
        warehouse.close()


def test_the_data_docs_index_lists_every_validation_run(reports, tmp_path: Path):
    page = render((reports["docs"] / "validation" / "index.html").as_uri(), tmp_path / "index.png")
    text = page.text
    for feed in FEEDS:
        assert f"{feed}__{DAY}" in text, f"the index shows no run of {feed} (CDN scripts not loaded?)"
    assert f"Showing 1 to {len(FEEDS)} of {len(FEEDS)} rows" in text


def test_a_run_page_shows_each_rule_and_the_counts_of_audit_validation_results(reports, tmp_path: Path):
    results = [r for r in _validation_results(reports["url"]) if r["feed"] == "schools"]
    # GX evaluates the rules that ran as expectations; skipped ones and the type check are audit-only
    evaluated = [r for r in results if r["skipped"] is None and r["expectation"].startswith("expect_")]
    failed = [r for r in evaluated if not r["success"]]
    assert failed, "the simulated schools feed carries defects that fail some rules"
    [run] = (reports["docs"] / "validation" / "validations" / "schools").glob("*/*/*.html")
    text = render(run.as_uri(), tmp_path / "run.png", window=(1400, 2400)).text
    assert f"Run Name schools__{DAY}" in text
    assert f"Data asset: raw.schools, batch schools:{DAY}" in text, "the page names what was validated"
    assert f"Evaluated Expectations {len(evaluated)}" in text
    assert f"Successful Expectations {len(evaluated) - len(failed)}" in text
    assert f"Unsuccessful Expectations {len(failed)}" in text
    for r in evaluated:
        assert (
            f"{r['rule']} (row)" in text or f"{r['rule']} (warn)" in text or f"{r['rule']} (critical)" in text
        )
    for r in failed:
        assert f"{r['unexpected_count']} unexpected values found" in text, r


def test_no_report_page_loads_anything_from_the_network(reports):
    pages = sorted(reports["docs"].rglob("*.html"))
    assert len(pages) > 2 * len(FEEDS)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not REMOTE.findall(html), f"{page} loads {REMOTE.findall(html)[:3]} from the network"
        assert "newsletter" not in html.lower(), f"{page} carries GX's newsletter footer"
        if page.parent.name == "dbt":
            continue  # one self-contained page: its "links" are routes of its own app (#!/model/...)
        for ref in LOCAL_REF.findall(html):
            path = unquote(urlparse(ref).path)
            assert (page.parent / path).resolve().is_file(), f"{page} refers to {ref}, which is missing"


def test_the_vendored_assets_are_the_files_gx_templates_name():
    """Every CDN URL in the installed GX templates has a vendored copy, byte-identical to the registry's."""
    manifest = json.loads((data_docs.ASSETS / "manifest.json").read_text())
    by_url = {a["url"]: a for a in manifest["assets"]}
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    for template in templates.glob("*.j2"):
        for line in template.read_text().splitlines():
            if re.search(r"<(script|link)\b", line):
                for url in re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", line):
                    assert url in by_url, f"{template.name} loads {url}: run tools/vendor_data_docs_assets.py"
                    integrity = re.search(r'integrity="(sha384-[^"]+)"', line)
                    if integrity:
                        body = (data_docs.ASSETS / by_url[url]["file"]).read_bytes()
                        assert (
                            "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
                            == integrity[1]
                        )
    for asset in manifest["assets"]:
        body = (data_docs.ASSETS / asset["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == asset["sha256"], asset["file"]
        licence = data_docs.ASSETS / asset["file"].split("/")[0]
        assert any(licence.glob("LICENSE*")), f"no licence next to {asset['file']}"


def test_the_dbt_docs_show_the_models_and_the_warehouse_columns(reports, tmp_path: Path):
    index = reports["docs"] / "dbt" / "index.html"
    model = render(
        index.as_uri() + "#!/model/model.emergency_dw.fct_enterprise_risk_daily",
        tmp_path / "dbt-model.png",
        budget_ms=8000,
    ).text
    assert "fct_enterprise_risk_daily" in model and "risk_level" in model and "top_factors" in model
    assert "four-colour band" in model, "the model's description is shown"
    source = render(
        index.as_uri() + "#!/source/source.emergency_dw.gaj.alerts_110",
        tmp_path / "dbt-source.png",
        budget_ms=8000,
    ).text
    # column types come from the warehouse's catalog: the raw table as loaded, with its audit columns
    assert "_batch_id" in source and "TIMESTAMP WITH TIME ZONE" in source


def test_the_reports_index_links_each_site_on_disk(reports, tmp_path: Path):
    docs = reports["docs"]
    text = render((docs / "index.html").as_uri(), tmp_path / "reports.png", budget_ms=1000).text
    assert "Validation reports (Great Expectations Data Docs)" in text
    assert "Warehouse documentation (dbt docs)" in text
    for page in ("audit", "map", "response"):  # edw docs writes the report pages too
        assert (docs / page / "index.html").is_file()
    assert "Response times" in text and "Drill results" not in text
    other = docs / "drills" / "index.html"  # a site another module writes appears under its own title
    other.parent.mkdir()
    other.write_text("<html><head><title>Drill results by town</title></head><body></body></html>")
    try:
        html = write_site_index(docs).read_text()
    finally:
        shutil.rmtree(other.parent)
    assert "Drill results by town" in html and 'href="drills/index.html"' in html
