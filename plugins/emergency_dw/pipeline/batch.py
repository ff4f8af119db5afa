"""What a batch is as it moves through the pipeline: its identity, and landed, failed or loaded.

A batch is identified by its feed and interval (``batch_id_for``), so a rerun replaces exactly what the
previous run wrote. ``LandedBatch`` is what ``extract_and_land`` passes to ``validate_and_load`` (through
XCom, as a dict); ``BatchResult`` is what a load reports; ``BatchFailed`` is raised when a batch fails as
a whole, and its message, like the audit row's ``error``, names the feed, the batch and the rule
(``batch_error``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from ..catalog import Feed
from ..config import LOCAL_TZ
from .validate import RuleOutcome


def day_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day (Asia/Shanghai) as a UTC interval."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def batch_id_for(feed: Feed, start: dt.datetime, end: dt.datetime) -> str:
    local_start, local_end = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
    if local_start.time() == dt.time() and local_end - local_start == dt.timedelta(days=1):
        return f"{feed.name}:{local_start.date().isoformat()}"
    return f"{feed.name}:{local_start:%Y%m%dT%H%M}-{local_end:%Y%m%dT%H%M}"


def batch_error(feed: str, batch_id: str, rule: str, message: str) -> str:
    """The words a user reads about a failed batch: which feed, which batch, which rule, what to do."""
    return f"feed {feed}, batch {batch_id}, rule {rule}: {message}"


class BatchFailed(RuntimeError):
    """A batch failed as a whole (a critical rule, a schema change, an unreadable source)."""

    def __init__(self, feed: str, batch_id: str, rule: str, message: str) -> None:
        self.feed, self.batch_id, self.rule = feed, batch_id, rule
        super().__init__(batch_error(feed, batch_id, rule, message))


@dataclass(frozen=True)
class Failure:
    """The rule that failed a batch as a whole, and why (in words a user can act on)."""

    rule: str
    message: str


@dataclass
class LandedBatch:
    feed: str
    batch_id: str
    path: str
    rows: int
    source: str
    interval_start: str | None
    interval_end: str | None
    files: list[str] = field(default_factory=list)
    extract_seconds: float = 0.0
    started_at: str = ""
    covers: str = ""  # a file sent on its own: the days it covers and how they were found

    def to_xcom(self) -> dict:
        return asdict(self)


@dataclass
class BatchResult:
    feed: str
    batch_id: str
    status: str
    rows_extracted: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int
    failed_rule: str | None = None
    error: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    outcomes: list[RuleOutcome] = field(default_factory=list, repr=False)
