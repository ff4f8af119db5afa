"""How many rows a feed's batch should hold: the bounds of a ``history`` rule (``row_count_in_band``).

Once the feed has ``min_history`` loaded batches, the band is in rows per day of a batch's interval (a
department's file may cover a month): ``low``..``high`` x the median rows per day of the last ``batches``
loaded batches, times the days the batch covers, widened by ``chance_sigmas`` standard deviations of a
Poisson count so that the ordinary ups and downs of a small feed (3 weather warnings a day, or any feed
at a small simulated ``--scale``) never fail a batch. Until then the catalog speaks: a feed expected
daily whose ``rows_per_day`` is at least ``floor_from_rows_per_day`` must send at least one row (the
catalog's figure is full volume; a feed of thousands of rows a day still sends some at a hundredth of
them), and a smaller feed is not judged on its volume yet (a quiet day may truly hold none).

The numbers are ``[row_count_band]`` of ``pipeline.toml``, where their meaning is written; a suite's rule
may give its own ``history``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog import Feed
from .pipeline_settings import row_count_band_settings
from .suites import expected_daily


@dataclass
class Band:
    """The resolved bounds (None: unbounded on that side) or why the rule is not run."""

    min_value: int | None = None
    max_value: int | None = None
    basis: str = ""  # what the bounds come from, appended to the rule's description
    skipped: str | None = None


def interval_days(start, end) -> float:
    """The days an interval covers (1 for a batch without one: a file landed before intervals were kept)."""
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return 1.0
    return max(1.0, round((pd.Timestamp(end) - pd.Timestamp(start)) / pd.Timedelta(days=1)))


def band_from_rates(
    rates: list[float], days: float, low: float, high: float, chance_sigmas: float
) -> tuple[int, int]:
    """Bounds for a batch of ``days`` from the earlier batches' rows per day: ``low``/``high`` x the
    expected count, widened by ``chance_sigmas`` for chance (a Poisson count's standard deviation is the
    root of its mean)."""
    expected = float(np.median(rates)) * days
    spread = chance_sigmas * math.sqrt(expected)
    lowest = max(0, math.floor(min(expected * low, expected - spread)))
    highest = math.ceil(max(expected * high, expected + spread + chance_sigmas))
    return lowest, highest


def recent_rates(warehouse, feed: Feed, batch_id: str, batches: int) -> list[float]:
    """Rows per day of the feed's last ``batches`` loaded batches (by interval), this one left out."""
    rows = warehouse.query(
        "select rows_extracted, interval_start, interval_end from audit.batches "
        "where feed = ? and status = 'loaded' and batch_id <> ? order by interval_start desc limit ?",
        [feed.name, batch_id, int(batches)],
    ).to_pylist()
    return [r["rows_extracted"] / interval_days(r["interval_start"], r["interval_end"]) for r in rows]


def row_count_band(
    warehouse,
    feed: Feed,
    batch_id: str,
    history: dict,
    interval: tuple[dt.datetime, dt.datetime] | None,
) -> Band:
    """The band of one batch, from the feed's history when it has enough, else from the catalog."""
    configured = row_count_band_settings()
    settings = {**configured.history(), **history}
    rates = recent_rates(warehouse, feed, batch_id, int(settings["batches"]))
    days = interval_days(*interval) if interval else 1.0
    span = f" over {days:g} days" if days != 1 else ""
    needed = int(settings["min_history"])
    if len(rates) >= needed:
        low, high = band_from_rates(
            rates, days, float(settings["low"]), float(settings["high"]), configured.chance_sigmas
        )
        per_day = float(np.median(rates))
        return Band(
            low, high, f"(band {low}..{high}{span}: median {per_day:,.1f} a day of {len(rates)} batches)"
        )
    floor_from = float(settings["floor_from_rows_per_day"])
    if expected_daily(feed) and feed.rows_per_day >= floor_from:
        return Band(
            1,
            None,
            f"(at least one row: the catalog expects about {feed.rows_per_day:,} a day; the band from "
            f"history once {needed} batches have loaded, {len(rates)} so far)",
        )
    return Band(skipped=f"only {len(rates)} earlier batches; the band needs {needed}")
