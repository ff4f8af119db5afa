"""The static report pages, generated from the warehouse into ``$EDW_DATA_DIR/docs/``:

* ``audit/index.html``: batches and their reconciliation, quarantine by feed and rule, validation
  history per expectation and run, failed batches with their error, empty or short batches of feeds
  expected daily (for auditors);
* ``map/index.html``: the situation map: enterprises by risk level, open incidents and shelters, per town;
* ``response/index.html``: response-time distributions per channel and interval against their targets.

Each page is one self-contained HTML file (inline CSS and SVG, no script, no network): it opens from the
file system. Text goes through Jinja's autoescaping. A page whose tables are not in the warehouse yet is
still written, saying which table is missing and what to run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..catalog import all_feeds, department, get_feed
from ..config import settings
from ..warehouse import Warehouse, connect
from . import charts, geo, queries, summary
from .report_settings import ReportSettings, load_report_settings

TEMPLATES = Path(__file__).with_name("templates")
PAGES = ("audit", "map", "response")
TITLES = {
    "audit": "Audit report",
    "map": "Situation map",
    "response": "Response times",
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True
    )
    env.filters["n"] = lambda v: "" if v is None else f"{v:,}"
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.1f}%"
    env.filters["duration"] = lambda v: "–" if v is None else charts.duration(v)
    env.filters["interval_name"] = lambda v: v.replace("_", " ")
    return env


def build_report_pages(
    data_dir: Path | None = None,
    warehouse_url: str | None = None,
    days: list[dt.date] | None = None,
    report_settings: ReportSettings | None = None,
) -> list[Path]:
    """Write the audit, map and response pages under ``<data_dir>/docs/``; returns their paths.

    ``days`` limits the response page to calls received on those days (default: the latest day)."""
    data_dir = data_dir or settings().data_dir
    warehouse_url = warehouse_url or settings().warehouse_url
    report_settings = report_settings or load_report_settings()
    env = _environment()
    docs = data_dir / "docs"
    generated = dt.datetime.now(dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    common = {
        "generated": generated,
        "warehouse": summary.display_url(warehouse_url),
        "titles": TITLES,
        "has_data_docs": (docs / "validation" / "index.html").exists(),
    }
    builders = {"audit": audit_context, "map": map_context, "response": response_context}
    written = []
    warehouse = connect(warehouse_url)
    try:
        for page in PAGES:
            try:
                context = builders[page](warehouse, report_settings, days)
                missing = None
            except queries.MissingTable as exc:
                context, missing = {}, str(exc)
            html = env.get_template(f"{page}.html.j2").render(
                page=page, title=TITLES[page], missing=missing, **common, **context
            )
            path = docs / page / "index.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".html.tmp")
            tmp.write_text(html, encoding="utf-8")
            tmp.replace(path)
            written.append(path)
    finally:
        warehouse.close()
    return written


def _department_of(feed_name: str) -> str:
    try:
        dept = department(get_feed(feed_name).department)
    except KeyError:
        return "not in the catalog"
    return dept.name


# ---------------------------------------------------------------- audit
@dataclass
class HistoryRow:
    rule: str
    severity: str
    description: str
    cells: list[dict | None]  # per run (oldest first): {success, unexpected, skipped}
    failed_runs: int
    runs: int


def audit_context(warehouse: Warehouse, report_settings: ReportSettings, days: list[dt.date] | None) -> dict:
    batches = queries.batches(warehouse)
    results = queries.validation_results(warehouse)
    groups = queries.quarantine_by_rule(warehouse)
    rule_info = {(r.feed, r.rule): r for r in results}
    keep_runs = int(report_settings.audit["validation_history_runs"])

    by_feed: dict[str, list[queries.ValidationResult]] = defaultdict(list)
    for r in results:
        by_feed[r.feed].append(r)
    batch_day = {b.batch_id: b.day for b in batches}
    history = []
    order = {feed.name: k for k, feed in enumerate(all_feeds())}
    for feed in sorted(by_feed, key=lambda f: (order.get(f, len(order)), f)):
        rows = by_feed[feed]
        runs: list[str] = []
        for r in rows:  # oldest first
            if r.batch_id not in runs:
                runs.append(r.batch_id)
        runs = runs[-keep_runs:]
        cells: dict[str, dict[str, dict]] = defaultdict(dict)
        info: dict[str, queries.ValidationResult] = {}
        for r in rows:
            if r.batch_id in runs:
                cells[r.rule][r.batch_id] = {
                    "success": bool(r.success),
                    "unexpected": r.unexpected_count,
                    "skipped": r.skipped,
                }
                info[r.rule] = r
        table = []
        for rule, by_run in cells.items():
            evaluated = [c for c in by_run.values() if not c["skipped"]]
            table.append(
                HistoryRow(
                    rule=rule,
                    severity=info[rule].severity,
                    description=info[rule].description or "",
                    cells=[by_run.get(run) for run in runs],
                    failed_runs=sum(not c["success"] for c in evaluated),
                    runs=len(evaluated),
                )
            )
        table.sort(key=lambda h: (-h.failed_runs, h.rule))
        latest_failed = sum(
            1 for h in table if h.cells[-1] and not h.cells[-1]["success"] and not h.cells[-1]["skipped"]
        )
        history.append(
            {
                "feed": feed,
                "runs": [{"batch_id": run, "day": batch_day.get(run)} for run in runs],
                "rows": table,
                "latest_failed": latest_failed,
                "expectations": len(table),
            }
        )
    failing = [{"feed": h["feed"], "row": row} for h in history for row in h["rows"] if row.failed_runs]
    quarantine = [
        {
            "feed": g.feed,
            "rule": g.rule,
            "rows": g.rows,
            "batches": len(g.batch_ids),
            "severity": rule_info[(g.feed, g.rule)].severity if (g.feed, g.rule) in rule_info else "",
            "description": (rule_info[(g.feed, g.rule)].description or "")
            if (g.feed, g.rule) in rule_info
            else "",
        }
        for g in groups
    ]
    validation = summary.validation(results)
    power = _power_monitoring(warehouse, report_settings)
    recent_builds = queries.builds(warehouse, int(report_settings.audit["builds_listed"]))
    last_good = next((b for b in recent_builds if b.status == "success"), None)
    loaded_now = sum(b.status == "loaded" for b in batches)
    totals = {
        "batches": len(batches),
        "loaded": sum(b.status == "loaded" for b in batches),
        "failed": sum(b.status == "failed" for b in batches),
        "extracted": sum(b.rows_extracted for b in batches),
        "rows_loaded": sum(b.rows_loaded for b in batches),
        "quarantined": sum(b.rows_quarantined for b in batches),
        "rejected": sum(b.rows_rejected for b in batches),
        "reconciled": sum(b.reconciles for b in batches),
        "feeds": len({b.feed for b in batches}),
        "days": sorted({b.day for b in batches if b.day}),
    }
    return {
        "batches": [{"b": b, "department": _department_of(b.feed)} for b in batches],
        "failed": [b for b in batches if b.status == "failed"],
        "failed_reruns": queries.failed_reruns(warehouse),
        "volume_flags": summary.volume_flags(batches, results),
        "unreconciled": [b for b in batches if not b.reconciles],
        "quarantine": quarantine,
        "quarantine_total": sum(b.rows_quarantined for b in batches),
        "history": history,
        "failing": failing,
        "validation": validation,
        "totals": totals,
        "power": power,
        "risk_bands": _risk_bands(warehouse),
        "builds": recent_builds,
        # loaded batches the last successful build did not see (none listed: no build recorded yet)
        "unbuilt": max(loaded_now - last_good.batches_seen, 0) if last_good else None,
    }


def _risk_bands(warehouse: Warehouse) -> dict:
    """The risk levels' index bands as the seed sets them (what the map and the dbt docs show too), with the
    latest day's enterprises per level and how many of the reds an open major hazard made."""
    try:
        levels = queries.risk_levels(warehouse)
        risk_date, risks = queries.latest_risk(warehouse)
    except queries.MissingTable as exc:
        return {"missing": str(exc)}
    counts = Counter(r.risk_level for r in risks)
    overridden = Counter(r.risk_level for r in risks if r.level_reason == "open_major_hazard")
    return {
        "missing": None,
        "risk_date": risk_date,
        "levels": [
            {
                "name": level.name,
                "name_zh": level.name_zh,
                "range": f"{level.min_index:g}–{min(level.max_index, 100):g}",
                "description": level.description,
                "count": counts.get(level.name, 0),
                "by_major_hazard": overridden.get(level.name, 0),
            }
            for level in levels
        ],
    }


def _power_monitoring(warehouse: Warehouse, report_settings: ReportSettings) -> dict:
    """The power warnings by rule and what the rules could not see (data quality), for the audit page; a
    note instead when the power marts are not built."""
    try:
        warnings = queries.power_warnings_by_rule(warehouse)
        issues = queries.power_issues(warehouse)
    except queries.MissingTable as exc:
        return {"missing": str(exc)}
    shown = list(report_settings.audit["power_issues_listed"])
    episodes = queries.power_issue_episodes(warehouse, shown, int(report_settings.audit["power_issue_rows"]))
    return {"missing": None, "warnings": warnings, "issues": issues, "episodes": episodes, "listed": shown}


# ---------------------------------------------------------------- map
def map_context(warehouse: Warehouse, report_settings: ReportSettings, days: list[dt.date] | None) -> dict:
    cfg = report_settings.map
    levels = queries.risk_levels(warehouse)
    risk_date, risks = queries.latest_risk(warehouse)
    town_list = queries.towns(warehouse)
    shelter_list = queries.shelters(warehouse)
    reported_date, open_reports = queries.open_incident_reports(
        warehouse, list(cfg["open_incident_statuses"])
    )
    calls: Counter = Counter()
    call_days: list[dt.date] = []
    if queries.table_exists(warehouse, "marts", "fct_incident_response"):
        rows = queries.incidents(warehouse, [], days)
        calls = Counter((r["town_code"], r["channel"]) for r in rows)
        call_days = sorted({r["received_date"] for r in rows})
    channels = (
        sorted({t.channel for t in queries.response_targets(warehouse)})
        if queries.table_exists(warehouse, "reference", "response_targets")
        else []
    )

    width, height = int(cfg["width_px"]), int(cfg["height_px"])
    projection = geo.projection_for(
        [(t.lon, t.lat) for t in town_list], width, height, float(cfg["margin_degrees"])
    )
    sites = [projection.plane(t.lon, t.lat) for t in town_list]
    outline = geo.buffered_hull(sites, float(cfg["margin_degrees"]))
    cells = geo.voronoi_cells(sites, outline)
    site_of = {t.town_code: (sites[k], cells[k]) for k, t in enumerate(town_list)}
    colours = {level.name: report_settings.level_colour(level.name) for level in levels}
    rank = {level.name: level.rank for level in levels}

    dots = []
    share = float(cfg["cell_fill_share"])
    base, growth = float(cfg["enterprise_dot_radius_px"]), float(cfg["dot_growth_per_level"])
    least = max(rank.values(), default=1)
    radius = {name: round(base * (1 + growth * (least - r)), 1) for name, r in rank.items()}
    for r in sorted(risks, key=lambda r: (-rank.get(r.risk_level, 99), r.risk_index)):  # most severe on top
        if r.town_code not in site_of:
            continue
        site, cell = site_of[r.town_code]
        x, y = projection.px(geo.place_in_cell(r.enterprise_id, site, cell, share))
        dots.append(
            {
                "x": x,
                "y": y,
                "colour": colours.get(r.risk_level, "#888"),
                "r": radius.get(r.risk_level, base),
                "title": f"{r.enterprise_id} {r.enterprise_name or ''}: {r.risk_level}, risk index {r.risk_index:.1f}",
            }
        )
    max_capacity = max((s.capacity for s in shelter_list), default=1) or 1
    small, large = float(cfg["shelter_min_size_px"]), float(cfg["shelter_max_size_px"])
    shelter_marks = []
    for s in shelter_list:
        if s.lat is None or s.lon is None:
            continue
        x, y = projection.lonlat_px(s.lon, s.lat)
        size = round(small + (large - small) * (s.capacity / max_capacity) ** 0.5, 1)
        shelter_marks.append(
            {
                "x": x,
                "y": y,
                "size": size,
                "open": bool(s.is_open),
                "title": f"shelter {s.name}: capacity {s.capacity:,}{' (open)' if s.is_open else ''}",
            }
        )
    by_town_level: Counter = Counter((r.town_code, r.risk_level) for r in risks)
    shelters_by_town: dict[str, list[queries.Shelter]] = defaultdict(list)
    for s in shelter_list:
        shelters_by_town[s.town_code].append(s)
    town_rows, town_shapes = [], []
    for k, t in enumerate(town_list):
        centre = projection.px(sites[k])
        label_at = projection.px(geo.centroid(cells[k])) if cells[k] else centre
        incidents_open = open_reports.get(t.town_code, 0)
        town_shapes.append(
            {
                "path": geo.svg_path([projection.px(p) for p in cells[k]]),
                "name": t.name,
                "name_zh": t.name_zh,
                "cx": centre[0],
                "cy": centre[1],
                "lx": label_at[0],
                "ly": label_at[1],
                "open_incidents": incidents_open,
            }
        )
        town_shelters = shelters_by_town.get(t.town_code, [])
        town_rows.append(
            {
                "town": t,
                "levels": [by_town_level.get((t.town_code, level.name), 0) for level in levels],
                "enterprises": sum(by_town_level.get((t.town_code, level.name), 0) for level in levels),
                "open_incidents": incidents_open,
                "shelters": len(town_shelters),
                "shelters_open": sum(bool(s.is_open) for s in town_shelters),
                "capacity": sum(s.capacity for s in town_shelters),
                "calls": [calls.get((t.town_code, c), 0) for c in channels],
            }
        )
    level_counts = Counter(r.risk_level for r in risks)
    overridden = Counter(r.risk_level for r in risks if r.level_reason == "open_major_hazard")
    top_n = int(report_settings.summary["top_enterprises"])
    return {
        "levels": [
            {
                "name": level.name,
                "name_zh": level.name_zh,
                "colour": colours[level.name],
                "count": level_counts.get(level.name, 0),
                "range": f"{level.min_index:g}–{min(level.max_index, 100):g}",
                # an open major hazard makes an enterprise red whatever its index: counted apart
                "by_major_hazard": overridden.get(level.name, 0),
            }
            for level in levels
        ],
        "risk_date": risk_date,
        "reported_date": reported_date,
        "call_days": call_days,
        "channels": channels,
        "open_statuses": list(cfg["open_incident_statuses"]),
        "width": width,
        "height": height,
        "outline": geo.svg_path([projection.px(p) for p in outline]),
        "towns": town_shapes,
        "dots": dots,
        "shelters": shelter_marks,
        "town_rows": town_rows,
        "enterprises_total": len(risks),
        "unplaced": sum(1 for r in risks if r.town_code not in site_of),
        "open_total": sum(open_reports.values()),
        "shelters_total": len(shelter_list),
        "shelters_open": sum(bool(s.is_open) for s in shelter_list),
        "capacity_total": sum(s.capacity for s in shelter_list),
        "top": risks[:top_n],
        "level_colour": colours,
    }


# ---------------------------------------------------------------- response
def channel_label(channel: str) -> str:
    """``110 police`` style label from the catalog: the department of feed alerts_<channel>."""
    try:
        return f"{channel} · {department(get_feed(f'alerts_{channel}').department).name}"
    except KeyError:
        return channel


def response_context(
    warehouse: Warehouse, report_settings: ReportSettings, days: list[dt.date] | None
) -> dict:
    cfg = report_settings.response
    intervals = queries.response_intervals(warehouse)
    targets = queries.response_targets(warehouse)
    rows = queries.incidents(warehouse, intervals, days)
    figures = summary.channel_response(rows, intervals, targets)
    basis = {(t.channel, t.interval): t.basis for t in targets}
    channels = []
    for figure in figures:
        incidents = [r for r in rows if r["channel"] == figure.channel]
        charts_row = []
        for f in figure.intervals:
            values = [r[f.interval] for r in incidents if r[f.interval] is not None]
            charts_row.append(
                {
                    "figure": f,
                    "basis": basis.get((figure.channel, f.interval)) or "",
                    "chart": charts.histogram(
                        values,
                        f.target_seconds,
                        f.p50_seconds,
                        f.p90_seconds,
                        bins=int(cfg["histogram_bins"]),
                        axis_target_multiple=float(cfg["axis_target_multiple"]),
                        width=int(cfg["chart_width_px"]),
                        height=int(cfg["chart_height_px"]),
                    ),
                }
            )
        channels.append({"figure": figure, "label": channel_label(figure.channel), "charts": charts_row})
    received = sorted({r["received_date"] for r in rows})
    return {"intervals": intervals, "channels": channels, "received": received, "incident_total": len(rows)}
