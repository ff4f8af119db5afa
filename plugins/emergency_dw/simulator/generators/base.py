"""What a feed generator is: a function from (context, day) to that day's records and truth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...catalog import Feed, get_feed
from ..common import rng_for
from ..scenario import Scenario
from ..world import World


@dataclass
class SimContext:
    seed: int
    scale: float
    scenario: Scenario
    world: World

    def rng(self, feed: str, day: dt.date | None, *labels: object) -> np.random.Generator:
        return rng_for(self.seed, feed, day.isoformat() if day else "static", *labels)


@dataclass
class DayOutput:
    """One day of a feed as its source system holds it (before late delivery and defects).

    ``frame`` has exactly the catalog's columns; timestamps are tz-aware UTC, dates are ``datetime.date``.
    ``anomalies`` are injected anomalies (ground truth); ``protected`` marks rows defects must not touch;
    ``near_misses`` and ``data_quality`` (power feeds) are what the rules must not warn about: look-alikes
    and data problems, each a dict of ``NEAR_MISS_COLUMNS`` (power_day.py).
    """

    frame: pd.DataFrame
    anomalies: list[dict] = field(default_factory=list)
    protected: np.ndarray | None = None
    near_misses: list[dict] = field(default_factory=list)
    data_quality: list[dict] = field(default_factory=list)


Generator = Callable[[SimContext, dt.date], DayOutput]
GENERATORS: dict[str, Generator] = {}


def generator(feed_name: str) -> Callable[[Generator], Generator]:
    """Register the generator of a catalog feed."""
    get_feed(feed_name)  # fails early on a name the catalog does not know

    def register(fn: Generator) -> Generator:
        GENERATORS[feed_name] = fn
        return fn

    return register


def conform(feed: Feed, frame: pd.DataFrame) -> pd.DataFrame:
    """The catalog's columns in the catalog's order; a missing column is a bug in the generator."""
    missing = [c for c in feed.column_names if c not in frame.columns]
    if missing:
        raise RuntimeError(f"simulator for {feed.name} produced no column(s) {missing}")
    return frame[feed.column_names].reset_index(drop=True)
