"""The days a department's file covers (``edw ingest FEED --file PATH``), and so its batch's interval.

A file sent on its own has no schedule to say which day it is. Unless the user names the days
(``--from``/``--to``), they come from the records themselves: the local days (Asia/Shanghai, the days
batches are cut by) of the feed's ``event_time`` column, from the first to the last. A stray record does
not stretch them: days after tomorrow are left out (a file cannot hold what has not happened yet: a
mistyped year), and so is any group of days more than ``STRAY_GAP_DAYS`` from the group holding most
records (a 1970 default); such records are then judged, and held, by the suites' ``window`` rules
measured from the file's days. A snapshot of reference data (or a file whose event times are all
missing) is dated by the YYYYMMDD stamp in its name, else by the day it is loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..catalog import Feed
from ..catalog.model import EVENT_MAX_AGE_DAYS
from ..config import LOCAL_TZ

# as an event's max age (the window rules): a record a week away from the rest is not of this file
STRAY_GAP_DAYS = EVENT_MAX_AGE_DAYS


@dataclass(frozen=True)
class FileDays:
    first: dt.date
    last: dt.date
    basis: str  # how the days were found, for the user

    @property
    def interval(self) -> tuple[dt.datetime, dt.datetime]:
        """From the first day's local midnight to the midnight after the last day, in UTC."""
        start = dt.datetime.combine(self.first, dt.time(), tzinfo=LOCAL_TZ)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), tzinfo=LOCAL_TZ)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def describe(self) -> str:
        days = f"{self.first}" if self.first == self.last else f"{self.first} .. {self.last}"
        return f"{days} ({self.basis})"


def event_days(feed: Feed, table: pa.Table) -> pd.Series:
    """The local day of each record's event time, as delivered (missing or unreadable values dropped)."""
    from .parse import convert

    column = feed.column(feed.event_time) if feed.event_time else None
    if column is None:
        return pd.Series([], dtype=object)
    name = next((n for n in (column.header, column.name) if n in table.column_names), None)
    if name is None:
        return pd.Series([], dtype=object)
    values = table.column(name).to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    moments = convert(column, values, feed.timezone).dropna()
    return moments.dt.tz_convert(LOCAL_TZ).dt.date


def covered_days(days: pd.Series, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """First and last day of the group of days holding most records (None when there are none)."""
    counts = days[days <= today + dt.timedelta(days=1)].value_counts().sort_index()
    if counts.empty:
        return None
    groups: list[list[dt.date]] = [[counts.index[0]]]
    for day in counts.index[1:]:
        if (day - groups[-1][-1]).days > STRAY_GAP_DAYS:
            groups.append([])
        groups[-1].append(day)
    # most records; on a tie the latest group (the file is more likely recent than from 1970)
    best = max(reversed(groups), key=lambda group: int(counts.loc[group].sum()))
    return best[0], best[-1]


def file_days(
    feed: Feed,
    table: pa.Table,
    path: Path,
    first: dt.date | None = None,
    last: dt.date | None = None,
    today: dt.date | None = None,
) -> FileDays:
    """The days a file covers: the user's ``first``..``last`` when given, else from its records."""
    from ..connectors.file_drop import file_date

    if first is not None or last is not None:
        if first is None:
            raise ValueError("give --from too: --to alone does not say where the file's days start")
        last = last or first
        if last < first:
            raise ValueError(f"--to {last} is before --from {first}")
        return FileDays(first, last, "given with --from/--to")
    today = today or dt.datetime.now(LOCAL_TZ).date()
    if feed.event_time and not feed.snapshot:
        found = covered_days(event_days(feed, table), today)
        if found is not None:
            return FileDays(*found, f"the {feed.event_time} of its records")
    stamped = file_date(Path(path))
    if stamped is not None:
        return FileDays(stamped, stamped, "the date in the file's name")
    return FileDays(today, today, "the day it was loaded: no date in the file's name")
