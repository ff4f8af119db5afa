"""A feed's rules made ready for one batch: the run-time parts of its suite filled in from the warehouse
and the batch's interval (reference sets, row-count bands, time windows; see ``suites.py``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from ..catalog import Feed
from ..config import LOCAL_TZ
from . import suites
from .batch import LandedBatch, day_interval
from .volume import row_count_band


def batch_window(landed: LandedBatch) -> tuple[dt.datetime, dt.datetime]:
    """The interval a batch's ``window`` rules are measured from: the batch's own (a file sent on its own
    has the days it covers); for a file batch landed before intervals were kept, the local day of the
    date stamp in its name, else the local day it was loaded."""
    if landed.interval_start and landed.interval_end:
        start = pd.Timestamp(landed.interval_start).to_pydatetime()
        return start, pd.Timestamp(landed.interval_end).to_pydatetime()
    from ..connectors.file_drop import file_date

    day = file_date(Path(landed.source)) if landed.source else None
    if day is None:
        loaded = pd.Timestamp(landed.started_at) if landed.started_at else pd.Timestamp.now(tz="UTC")
        loaded = loaded.tz_localize("UTC") if loaded.tzinfo is None else loaded
        day = loaded.tz_convert(LOCAL_TZ).date()
    return day_interval(day)


def _window(rule: dict, window: dict, interval: tuple[dt.datetime, dt.datetime] | None) -> None:
    """``{"window": {"column", "days_before", "days_after"}}``: the column's values lie within the batch's
    interval widened by those days (either bound may be left out)."""
    column = window["column"]
    rule["kwargs"].setdefault("column", column)
    if interval is None:
        rule["skipped"] = "the batch has no interval to measure the window from"
        return
    start, end = interval
    bounds = []
    if window.get("days_before") is not None:
        low = start - dt.timedelta(days=float(window["days_before"]))
        rule["kwargs"]["min_value"] = low
        bounds.append(f"from {low.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}")
    if window.get("days_after") is not None:
        high = end + dt.timedelta(days=float(window["days_after"]))
        rule["kwargs"]["max_value"] = high
        bounds.append(f"until {high.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}")
    rule["description"] = f"{rule.get('description', '')} ({column} {' '.join(bounds)} local time)".strip()


def _reference(rule: dict, ref: dict, warehouse) -> None:
    """``{"reference": {"table", "column"}}``: the values the rule's column may take, read from a warehouse
    table now; the rule is skipped while that table has no rows."""
    schema, table = ref["table"].split(".")
    try:
        values = warehouse.query(
            f'select distinct "{ref["column"]}" as v from "{schema}"."{table}" where "{ref["column"]}" is not null'
        )
        value_set = [v for v in values.column("v").to_pylist() if v is not None]
    except Exception:  # noqa: BLE001 - a missing reference table is reported, not fatal
        value_set = []
    if value_set:
        # Checked by membership in pandas, not as a GX value_set: GX copies a value_set of
        # thousands of ids through pydantic many times per run (2-3 s a batch).
        rule["membership"] = {"column": rule["kwargs"]["column"], "values": value_set}
    else:
        rule["skipped"] = f"reference {ref['table']}.{ref['column']} has no rows yet"


def _history(rule: dict, history: dict, warehouse, feed: Feed, batch_id: str, interval) -> None:
    """``{"history": {...}}``: the row-count band from the feed's recent loaded batches (``volume.py``)."""
    band = row_count_band(warehouse, feed, batch_id, history, interval)
    if band.skipped:
        rule["skipped"] = band.skipped
        return
    for key in ("min_value", "max_value"):
        if getattr(band, key) is not None:
            rule["kwargs"][key] = getattr(band, key)
    rule["description"] = f"{rule.get('description', '')} {band.basis}".strip()


def resolve_rules(
    warehouse,
    feed: Feed,
    batch_id: str,
    frame: pd.DataFrame,
    interval: tuple[dt.datetime, dt.datetime] | None = None,
) -> list[dict]:
    """Fill in hand-written rules' run-time parts: reference sets, row-count bands, time windows."""
    resolved = []
    for original in suites.all_rules(suites.load_suite(feed)):
        r = json.loads(json.dumps(original))
        ref = r.pop("reference", None)
        history = r.pop("history", None)
        window = r.pop("window", None)
        if window:
            _window(r, window, interval)
        if ref:
            _reference(r, ref, warehouse)
        if history:
            _history(r, history, warehouse, feed, batch_id, interval)
        resolved.append(r)
    return resolved
