"""Feed generators. Importing this package registers every feed's generator."""

from __future__ import annotations

import datetime as dt

from ...catalog import get_feed
from . import enterprise, generic, oversight, power, response  # noqa: F401  (registration)
from .base import GENERATORS, DayOutput, SimContext


def generate_day(ctx: SimContext, feed_name: str, day: dt.date) -> DayOutput:
    """One day of a feed: its own generator, or the catalog-driven one."""
    fn = GENERATORS.get(feed_name)
    if fn is not None:
        return fn(ctx, day)
    return generic.generic_day(ctx, day, get_feed(feed_name))


__all__ = ["DayOutput", "SimContext", "generate_day"]
