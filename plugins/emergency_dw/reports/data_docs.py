"""The Great Expectations Data Docs site for auditors: an index and a page per validation run.

Each batch's validation result is kept as JSON under ``$EDW_DATA_DIR/validation/<feed>/`` by the
pipeline; this module loads them into a file-backed GX context under ``$EDW_DATA_DIR/gx`` and renders
the site into ``$EDW_DATA_DIR/docs/validation`` (static HTML, opens from the file system).

GX's page templates load bootstrap, jquery, vega and font-awesome from CDNs, so offline the index
would list no runs. The exact files are vendored in ``assets/data_docs/`` (see its README.md and
``tools/vendor_data_docs_assets.py``); after rendering, every page is pointed at the copies under
``static/vendor/`` and a page that still loads anything over the network is an error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

from ..config import settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
SITE = "validation"
ASSETS = Path(__file__).resolve().parent / "assets" / "data_docs"
GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# A resource the browser fetches by itself: a script, stylesheet, icon or image, or a CSS url().
NETWORK_RESOURCE = re.compile(
    r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)["']|url\(['"]?((?:https?:)?//[^'")]+)"""
)
# GX's cloud-footer.j2 on every page: a newsletter sign-up link
MARKETING_FOOTER = re.compile(r"<footer>\s*<p>Stay current on everything GX.*?</footer>", re.S)
SRI_ATTRIBUTES = re.compile(r'\s+integrity="sha\d+-[^"]+"|\s+crossorigin="anonymous"')
# GX hides the logo <img> in dark mode and shows a CDN background image instead; show the local one.
CUSTOM_STYLES = """/* written by edw docs: offline, GX's dark-mode logo (a CDN image) is replaced by the page's own */
@media (prefers-color-scheme: dark) {
  .navbar-brand a { background: none; }
  .navbar-brand a img { visibility: visible; filter: invert(1) hue-rotate(180deg); }
}
"""


class DataDocsError(RuntimeError):
    """The Data Docs site could not be written so that it opens offline."""


def build_data_docs(data_dir: Path | None = None) -> Path:
    """Render every kept validation result (and each feed's suite as last run); returns index.html.

    Each run page is titled by its batch (``<feed>__<day>``) and validation time, and lists every
    expectation as the pipeline's rule: name, severity (``critical``/``row``/``warn``) and description,
    the names ``audit.validation_results`` and quarantined rows' failed rules use, with GX's status and
    observed value. The site is rebuilt from ``validation/`` each time.
    """
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    data_dir = data_dir or settings().data_dir
    site_dir = data_dir / "docs" / SITE
    project = data_dir / "gx"
    for stale in (project / "gx" / "uncommitted" / "validations", project / "gx" / "expectations", site_dir):
        shutil.rmtree(stale, ignore_errors=True)
    context = gx.get_context(mode="file", project_root_dir=str(project))
    styles = Path(context.plugins_directory) / "custom_data_docs" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    (styles / "data_docs_custom_styles.css").write_text(CUSTOM_STYLES, encoding="utf-8")
    context.variables.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    context.variables.save()
    schema = ExpectationSuiteValidationResultSchema()
    descriptions = _rule_descriptions()
    latest: dict[str, tuple[dt.datetime, list]] = {}
    for path in sorted((data_dir / "validation").glob("*/*.json")):
        feed, batch = path.parent.name, path.stem
        result = schema.load(json.loads(path.read_text(encoding="utf-8")))
        result.suite_name = feed
        run_time = _validated_at(result.meta) or dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        run_id = RunIdentifier(run_name=batch, run_time=run_time)
        result.meta["run_id"] = run_id  # the page's title and "Run Name" / "Run Time"
        # the page's "Data asset": what was validated (GX has no asset for a DataFrame it was handed)
        batch_id = batch.replace("__", ":", 1)
        result.meta["batch_spec"] = {
            **(result.meta.get("batch_spec") or {}),
            "data_asset_name": f"raw.{feed}, batch {batch_id} (as delivered, before loading)",
        }
        for item in result.results:
            # GX shows an expectation's description in place of its generated sentence
            item.expectation_config.description = _describe(
                feed, item.expectation_config.meta or {}, descriptions
            )
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=feed),
            run_id=run_id,
            batch_identifier=batch,
        )
        context.validation_results_store.set(key, result)
        if feed not in latest or run_time >= latest[feed][0]:
            latest[feed] = (run_time, [item.expectation_config for item in result.results])
    for feed, (_, configs) in sorted(latest.items()):
        # the suite as it last ran, so that the index's suite links open a page of its rules
        suite = gx.ExpectationSuite(name=feed)
        for config in configs:
            kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
            suite.add_expectation_configuration(
                type(config)(
                    type=config.type, kwargs=kwargs, meta=config.meta, description=config.description
                )
            )
        context.suites.add_or_update(suite)
    context.build_data_docs(site_names=[SITE])
    localise_assets(site_dir)
    return site_dir / "index.html"


def _rule_descriptions() -> dict[tuple[str, str], str]:
    """(feed, rule) -> the rule's description in today's suites, for results kept without one."""
    from .. import catalog
    from ..pipeline.suites import all_rules, load_suite

    return {
        (feed.name, rule["name"]): rule.get("description", "")
        for feed in catalog.all_feeds()
        for rule in all_rules(load_suite(feed))
    }


def _describe(feed: str, meta: dict, descriptions: dict[tuple[str, str], str]) -> str:
    """What a page shows for an expectation: the pipeline's rule name, severity and description."""
    rule, severity = meta.get("rule", "?"), meta.get("severity", "?")
    text = meta.get("description") or descriptions.get((feed, rule), "")
    return f"{rule} ({severity}): {text}" if text else f"{rule} ({severity})"


def _validated_at(meta: dict) -> dt.datetime | None:
    """When GX validated the batch (its batch marker ``ge_load_time``), if recorded."""
    stamp = (meta.get("batch_markers") or {}).get("ge_load_time")
    try:
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC) if stamp else None
    except ValueError:
        return None


def localise_assets(site_dir: Path) -> int:
    """Copy the vendored assets into the site and point every page at them; returns pages rewritten.

    Raises DataDocsError naming the page and URL when a page would still fetch something over the
    network (a great_expectations upgrade that references a new asset).
    """
    manifest = json.loads((ASSETS / "manifest.json").read_text(encoding="utf-8"))
    static = site_dir / "static"
    shutil.copytree(ASSETS, static / "vendor", dirs_exist_ok=True)
    rewritten = 0
    for page in sorted(site_dir.rglob("*.html")):
        original = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(static, page.parent)).as_posix()
        text = original
        for asset in manifest["assets"]:
            for quote in ('"', "'"):
                text = text.replace(
                    f"{quote}{asset['url']}{quote}", f"{quote}{prefix}/vendor/{asset['file']}{quote}"
                )
        text = re.sub(
            re.escape(GX_WEB_ASSETS) + r"logo-long\.png[^\"']*", f"{prefix}/images/logo-long.png", text
        )
        text = text.replace(f"url('{GX_WEB_ASSETS}full_logo_dark.png')", "none")
        text = MARKETING_FOOTER.sub("", text)  # a government site advertises nobody's newsletter
        # GX's favicon.j2 climbs one directory too few on run pages: point every static/ link at the site's
        text = re.sub(r"""(["'])(?:\./|(?:\.\./)+)static/""", lambda m, up=prefix: f"{m[1]}{up}/", text)
        # file:// pages have an opaque origin: a crossorigin/integrity fetch of a local file is refused.
        # The vendored files' sha384 equal the templates' integrity= values (checked when vendored).
        text = re.sub(r"<script\b[^>]*>", lambda tag: SRI_ATTRIBUTES.sub("", tag.group(0)), text)
        remote = [a or b for a, b in NETWORK_RESOURCE.findall(text)]
        if remote:
            raise DataDocsError(
                f"Data Docs page {page.relative_to(site_dir)} still loads {remote[0]} from the network "
                f"(great_expectations {manifest['great_expectations']} was vendored; the installed templates "
                f"reference an asset that is not): run `python tools/vendor_data_docs_assets.py` and commit "
                f"{ASSETS.relative_to(ASSETS.parents[4])}"
            )
        if text != original:
            page.write_text(text, encoding="utf-8")
            rewritten += 1
    return rewritten
