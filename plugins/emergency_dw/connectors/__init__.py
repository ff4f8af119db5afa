"""Connectors: read one interval of a feed from its source, as delivered.

``extract(feed, start, end)`` picks the connector the catalog declares and resolves where it reads
from with :mod:`.settings` (environment variables only). The pipeline parses, validates and loads.
"""

from __future__ import annotations

import datetime as dt

from ..catalog import Feed, get_feed
from .base import Extract, SourceError
from .file_drop import extract_files, mark_processed, pending_files, read_file
from .http_json import extract_http
from .settings import RetryPolicy, SettingsError, drop_root, http_settings, sql_settings
from .sql import extract_sql

__all__ = [
    "Extract",
    "RetryPolicy",
    "SettingsError",
    "SourceError",
    "extract",
    "extract_files",
    "extract_http",
    "extract_sql",
    "mark_processed",
    "pending_files",
    "read_file",
]


def extract(feed: Feed | str, start: dt.datetime | None, end: dt.datetime | None) -> Extract:
    """The feed's records changed in ``(start, end]`` (aware datetimes; None: unbounded).

    File drops: the pending files stamped with a local day of the interval (all pending when ``start``
    is None); move them with :func:`mark_processed` once their batch is loaded.
    """
    feed = get_feed(feed) if isinstance(feed, str) else feed
    kind = feed.connector_kind
    if kind == "http_json":
        return extract_http(feed, start, end, http_settings(feed))
    if kind == "sql":
        return extract_sql(feed, start, end, sql_settings(feed))
    if kind == "file_drop":
        return extract_files(feed, start, end, drop_root(feed))
    raise ValueError(f"feed {feed.name}: no connector for kind {kind!r}")
