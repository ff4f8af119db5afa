"""``$EDW_DATA_DIR/docs/index.html``: one page linking every report site that exists on disk.

A site is any folder ``docs/<name>/`` with an ``index.html``: the validation reports and dbt docs
written by ``edw docs``, and any other report (audit, map, response pages) another module writes
there. Each is listed under its page's own ``<title>``, with a description for the sites this
module knows, so a new site appears without changing this file. Plain HTML, no scripts: opens offline.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import settings

KNOWN = {
    "validation": (
        "Validation reports (Great Expectations Data Docs)",
        "Every batch's validation run: each rule with its severity (critical, row, warn), whether it passed, "
        "how many rows failed it and sample failing values. Start here to see why rows were quarantined.",
    ),
    "dbt": (
        "Warehouse documentation (dbt docs)",
        "Every staging, intermediate and mart model with its description, columns (types as in the "
        "warehouse), tests, sources and lineage graph.",
    ),
}
ORDER = ["validation", "dbt"]


@dataclass
class Site:
    name: str
    title: str
    description: str
    index: Path
    updated: dt.datetime


def _title(page: Path) -> str | None:
    head = page.read_text(encoding="utf-8", errors="replace")[:20000]
    found = re.search(r"<title>(.*?)</title>", head, re.I | re.S)
    if not found:
        return None
    return html.unescape(found.group(1)).strip() or None


def find_sites(docs_dir: Path) -> list[Site]:
    """Every ``docs/<name>/index.html`` on disk, the known sites first."""
    sites = []
    for index in sorted(docs_dir.glob("*/index.html")):
        name = index.parent.name
        title, description = KNOWN.get(name, (_title(index) or name.replace("_", " ").title(), ""))
        updated = dt.datetime.fromtimestamp(index.stat().st_mtime, tz=dt.UTC)
        sites.append(Site(name, title, description, index, updated))
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(sites, key=lambda s: (rank.get(s.name, len(ORDER)), s.name))


def write_site_index(docs_dir: Path | None = None) -> Path:
    """Write ``docs/index.html`` listing the sites found; returns its path."""
    docs_dir = docs_dir or settings().data_dir / "docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    sites = find_sites(docs_dir)
    items = "\n".join(
        f"""    <li>
      <a href="{html.escape(s.name)}/index.html">{html.escape(s.title)}</a>
      <span class="path">{html.escape(s.name)}/index.html, updated {s.updated:%Y-%m-%d %H:%M} UTC</span>
      {f"<p>{html.escape(s.description)}</p>" if s.description else ""}
    </li>"""
        for s in sites
    )
    if not sites:
        items = "    <li>No reports yet: run <code>edw run</code> (or <code>edw ingest</code>, then <code>edw docs</code>).</li>"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Emergency data warehouse: reports</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
    h1 {{ font-size: 1.6rem; }}
    ul {{ list-style: none; padding: 0; }}
    li {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem 1rem; margin: 0.8rem 0; }}
    li a {{ font-size: 1.15rem; font-weight: 600; }}
    .path {{ display: block; color: #666; font-size: 0.85rem; margin-top: 0.2rem; }}
    p {{ margin: 0.4rem 0 0; }}
  </style>
</head>
<body>
  <h1>Emergency data warehouse: reports</h1>
  <p>Written by <code>edw docs</code> (and at the end of <code>edw run</code>) on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.
  Every page opens from these files, with no server and no network.</p>
  <ul>
{items}
  </ul>
</body>
</html>
"""
    path = docs_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
