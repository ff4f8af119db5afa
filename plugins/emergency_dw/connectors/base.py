"""What every connector returns: one batch of a feed's records as the source delivered them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa


class SourceError(RuntimeError):
    """The source could not be read completely (after retries). Nothing of the batch may load."""


@dataclass
class Extract:
    """Records of one feed for one interval, as delivered (column names as the source spells them,
    values untyped or as the source typed them). The pipeline parses, validates and loads them."""

    feed: str
    table: pa.Table
    source: str  # where they came from: a URL, a table, file paths
    interval_start: dt.datetime | None  # None: unbounded (a whole snapshot)
    interval_end: dt.datetime | None
    files: list[Path] = field(default_factory=list)  # file drops: moved to processed/ once loaded
    requests: int = 0  # HTTP requests made (retries included)
    retries: int = 0

    @property
    def rows(self) -> int:
        return self.table.num_rows
