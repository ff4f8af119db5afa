"""The dbt docs as a static site: ``$EDW_DATA_DIR/docs/dbt/index.html``, one file that opens offline.

``dbt docs generate --static`` (run against the warehouse named by ``EDW_WAREHOUSE_URL``, through
``transform.run_dbt``) writes ``static_index.html``: dbt's docs app with the manifest (models, tests,
sources, exposures, lineage, descriptions) and the catalog (the warehouse's actual columns and types)
embedded, so it needs no server and no network. dbt's page loads nothing remote except a usage
tracker, which only starts when the manifest says ``send_anonymous_usage_stats: true``; ``run_dbt``
turns that off, and a page that would track is refused here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..config import settings
from ..transform import dbt_environment, run_dbt

SITE = "dbt"
REMOTE_RESOURCE = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)["']""")


class DbtDocsError(RuntimeError):
    """The dbt docs site could not be generated."""


def build_dbt_docs(warehouse_url: str | None = None) -> Path:
    """``dbt docs generate --static`` into the docs folder; returns the site's index.html."""
    site_dir = settings().data_dir / "docs" / SITE
    run = run_dbt(["docs", "generate", "--static", "--log-level", "none"], warehouse_url=warehouse_url)
    target = Path(dbt_environment(warehouse_url)["DBT_TARGET_PATH"])
    page = target / "static_index.html"
    if not run.success or not page.exists():
        raise DbtDocsError(
            f"dbt docs generate --static failed ({run.error or 'no static_index.html written'}); "
            f"its log is in {settings().data_dir / 'dbt' / 'logs'}. Check that the warehouse "
            f"({warehouse_url or settings().warehouse_url}) is reachable and not locked by another process, "
            "and that `edw build` passes, then run `edw docs` again."
        )
    html = page.read_text(encoding="utf-8")
    remote = REMOTE_RESOURCE.findall(html)
    if remote:
        raise DbtDocsError(f"dbt's docs page loads {remote[0]} from the network; it would not open offline")
    if re.search(r'"send_anonymous_usage_stats"\s*:\s*true', html):
        raise DbtDocsError(
            "the dbt docs manifest has send_anonymous_usage_stats: true, so the page would load a tracker "
            "from the network; set DBT_SEND_ANONYMOUS_USAGE_STATS=False and run `edw docs` again"
        )
    site_dir.mkdir(parents=True, exist_ok=True)
    tmp = site_dir / "index.html.tmp"
    shutil.copyfile(page, tmp)
    tmp.replace(site_dir / "index.html")
    return site_dir / "index.html"
