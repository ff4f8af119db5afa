"""The catalog's vocabulary: departments, feeds, columns and connector declarations.

Pure declarations: nothing here reads a file, a network or a database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColumnType = Literal["string", "integer", "float", "boolean", "date", "timestamp"]
ConnectorKind = Literal["http_json", "sql", "file_drop"]
FileFormat = Literal["csv", "xlsx", "parquet"]

COLUMN_TYPES: tuple[str, ...] = ("string", "integer", "float", "boolean", "date", "timestamp")

# How far from its batch's interval a record's event time and last update may lie: a feed's ``max_age_days``
# before it and ``max_ahead_days`` after it. The suites' window rules hold a record beyond them in quarantine
# (a 1970 default, a mistyped year: not a late record). Unless a feed declares its own, what it is implies
# its max age: a snapshot's REFERENCE_MAX_AGE_DAYS, else EVENT_MAX_AGE_DAYS.
EVENT_MAX_AGE_DAYS = 7  # an event reaches its feed within a week; an older export is sent as a file
WORK_ITEM_MAX_AGE_DAYS = 92  # a case open for weeks (a hazard, a task, a project) is re-sent for a quarter
REFERENCE_MAX_AGE_DAYS = 7300  # reference data may go unchanged for years, not for decades
MAX_AHEAD_DAYS = 1  # after the interval's end: a source clock off by a time zone


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_zh: str
    kind: Literal["department", "utility", "town"] = "department"
    owner_email: str = ""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pii: bool = False
    description: str = ""
    source_name: str | None = None  # the header the department's own file uses, when it differs
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.type!r}; use one of {COLUMN_TYPES}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} is above max {self.max}")

    @property
    def header(self) -> str:
        """The column's name as the source delivers it."""
        return self.source_name or self.name


@dataclass(frozen=True)
class HttpJson:
    """A department's REST API: bearer token, pages, an ``updated_since`` watermark."""

    endpoint: str
    conn_id: str
    page_size: int = 1000
    kind: ConnectorKind = "http_json"


@dataclass(frozen=True)
class Sql:
    """A table in a department's database, read by watermark in server-side chunks."""

    table: str
    conn_id: str
    watermark_column: str = "updated_at"
    chunk_rows: int = 50_000
    kind: ConnectorKind = "sql"


@dataclass(frozen=True)
class FileDrop:
    """Files a department drops into a landing folder (``<folder>/incoming``)."""

    folder: str
    format: FileFormat
    pattern: str
    sheet: str | None = None
    # Each town drops its own file of the day: the pattern's first ``*`` is the town's name, its second the
    # day (``*_突发事件报告_*.xlsx``). Otherwise one file a day, the pattern's ``*`` the day.
    per_town: bool = False
    kind: ConnectorKind = "file_drop"

    def __post_init__(self) -> None:
        if self.per_town and self.pattern.count("*") != 2:
            raise ValueError(
                f"file drop {self.folder}: per_town needs a pattern with two * (the town, then the day), "
                f"not {self.pattern!r}"
            )


Connector = HttpJson | Sql | FileDrop


@dataclass(frozen=True)
class Feed:
    name: str
    department: str
    title: str
    connector: Connector
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    rows_per_day: int
    schedule: str = "@daily"
    incremental_field: str | None = "updated_at"
    event_time: str | None = None  # the column that places a record in its day (late data is judged by it)
    snapshot: bool = False  # reference data delivered whole; events otherwise
    # A big event feed: on Postgres its raw table is partitioned by batch (one partition per batch), so a
    # rerun rewrites one partition, statistics are refreshed per batch and old batches can be detached
    # (`edw retention`). Only a new raw table is created so.
    partitioned: bool = False
    # A source that may send a record again, changed (a later batch, a re-sent day): staging keeps the latest
    # version by key. False for append-only readings, where a key is sent once and ranking millions of rows
    # a day would cost the build for nothing (the load itself replaces a batch's rows).
    redelivered: bool = True
    time_order: tuple[tuple[str, str], ...] = ()  # (earlier, later): later >= earlier when both are present
    # How many days before its batch's interval a record's event time and last update may lie. Left out, what
    # the feed is implies it (``implied_max_age_days``); a feed of cases that stay open for weeks and are
    # re-sent as they change says WORK_ITEM_MAX_AGE_DAYS.
    max_age_days: int | None = None
    max_ahead_days: int = MAX_AHEAD_DAYS  # how many days after it (a record cannot come from the future)
    timezone: str = "Asia/Shanghai"
    encoding: str = "utf-8"
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    # What a record is called, in Chinese, at the end of its name (学校, 避灾安置点, 有限公司): the simulator
    # makes up names such as 灵溪人民学校1 with it (点, a site, when empty). Only feeds with a name column.
    name_noun_zh: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"feed {self.name}: duplicate column names")
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"feed {self.name}: primary key column {key!r} is not declared")
        ordered = [name for pair in self.time_order for name in pair]
        for ref in (self.incremental_field, self.event_time, *ordered):
            if ref is not None and ref not in names:
                raise ValueError(f"feed {self.name}: column {ref!r} is not declared")
        if getattr(self.connector, "per_town", False) and "town_code" not in names:
            raise ValueError(f"feed {self.name}: a file per town needs a town_code column")
        if self.max_age_days is None:  # resolved once, so every reader sees the number (frozen: set directly)
            object.__setattr__(self, "max_age_days", self.implied_max_age_days)
        for what, days in (("max_age_days", self.max_age_days), ("max_ahead_days", self.max_ahead_days)):
            if not isinstance(days, int) or days < 0:
                raise ValueError(f"feed {self.name}: {what} is a number of days (0 or more), not {days!r}")

    @property
    def implied_max_age_days(self) -> int:
        """The max age what the feed is implies: a snapshot's reference data may go unchanged for years, an
        event reaches its feed within a week."""
        return REFERENCE_MAX_AGE_DAYS if self.snapshot else EVENT_MAX_AGE_DAYS

    @property
    def connector_kind(self) -> ConnectorKind:
        return self.connector.kind

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"feed {self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["feed"] = data.pop("name")
        data["connector"] = {
            "kind": self.connector.kind,
            **{k: v for k, v in asdict(self.connector).items() if k != "kind"},
        }
        data["primary_key"] = list(self.primary_key)
        data["columns"] = [
            {k: v for k, v in asdict(c).items() if v not in (None, "", False) or k in ("nullable", "pii")}
            for c in self.columns
        ]
        for col in data["columns"]:
            if "allowed" in col:
                col["allowed"] = list(col["allowed"])
        data["tags"] = list(self.tags)
        return data
