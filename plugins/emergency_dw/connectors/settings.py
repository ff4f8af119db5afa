"""Where each connector reads from, resolved from environment variables only (never from the repository).

HTTP feeds: ``EDW_SOURCE_<CONN_ID>_URL`` / ``EDW_SOURCE_<CONN_ID>_TOKEN`` (e.g. ``EDW_SOURCE_SRC_YJJ_API_URL``
for the catalog's ``conn_id`` ``src_yjj_api``), falling back to ``EDW_SOURCE_API_URL`` /
``EDW_SOURCE_API_TOKEN``. SQL feeds: ``EDW_SOURCE_<CONN_ID>_URL``, falling back to ``EDW_SOURCE_DB_URL``
(a SQLAlchemy URL). File drops: under ``EDW_DROP_ROOT``. HTTP retry policy: ``EDW_HTTP_MAX_ATTEMPTS``,
``EDW_HTTP_BACKOFF_SECONDS``, ``EDW_HTTP_MAX_BACKOFF_SECONDS``, ``EDW_HTTP_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Feed

API_URL = "EDW_SOURCE_API_URL"
API_TOKEN = "EDW_SOURCE_API_TOKEN"
DB_URL = "EDW_SOURCE_DB_URL"
DROP_ROOT = "EDW_DROP_ROOT"


class SettingsError(RuntimeError):
    """A connector setting is missing or malformed: a configuration problem, not a source failure."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the HTTP connector tries before giving up on a request."""

    max_attempts: int = 5
    backoff_seconds: float = 0.5  # the first retry waits about this long, doubling each time
    max_backoff_seconds: float = 30.0  # no wait is longer (Retry-After included)
    timeout_seconds: float = 30.0  # per request

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        env = os.environ if env is None else env
        return cls(
            max_attempts=int(_number(env, "EDW_HTTP_MAX_ATTEMPTS", cls.max_attempts, minimum=1)),
            backoff_seconds=_number(env, "EDW_HTTP_BACKOFF_SECONDS", cls.backoff_seconds, minimum=0),
            max_backoff_seconds=_number(
                env, "EDW_HTTP_MAX_BACKOFF_SECONDS", cls.max_backoff_seconds, minimum=0
            ),
            timeout_seconds=_number(env, "EDW_HTTP_TIMEOUT_SECONDS", cls.timeout_seconds, minimum=0.001),
        )


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    token: str = field(repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    url_variable: str = API_URL  # which variables they came from, for error messages
    token_variable: str = API_TOKEN


@dataclass(frozen=True)
class SqlSettings:
    url: str = field(repr=False)
    url_variable: str = DB_URL


def conn_variable(conn_id: str, suffix: str) -> str:
    """``src_yjj_api`` -> ``EDW_SOURCE_SRC_YJJ_API_<SUFFIX>``."""
    return f"EDW_SOURCE_{re.sub(r'[^A-Za-z0-9]', '_', conn_id).upper()}_{suffix}"


def http_settings(feed: Feed, env: Mapping[str, str] | None = None) -> HttpSettings:
    env = os.environ if env is None else env
    conn_id = _conn_id(feed, "http_json")
    url_var, url = _lookup(env, feed, conn_id, conn_variable(conn_id, "URL"), API_URL, "base URL of the API")
    token_var, token = _lookup(
        env, feed, conn_id, conn_variable(conn_id, "TOKEN"), API_TOKEN, "bearer token of the API"
    )
    return HttpSettings(
        base_url=url.rstrip("/"),
        token=token,
        retry=RetryPolicy.from_env(env),
        url_variable=url_var,
        token_variable=token_var,
    )


def sql_settings(feed: Feed, env: Mapping[str, str] | None = None) -> SqlSettings:
    env = os.environ if env is None else env
    conn_id = _conn_id(feed, "sql")
    var, url = _lookup(
        env, feed, conn_id, conn_variable(conn_id, "URL"), DB_URL, "SQLAlchemy URL of the database"
    )
    return SqlSettings(url=url, url_variable=var)


def drop_root(feed: Feed, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    value = (env.get(DROP_ROOT) or "").strip()
    if not value:
        raise SettingsError(
            f"feed {feed.name}: no landing folder configured; set {DROP_ROOT} to the folder that holds "
            f"<department>/<feed>/incoming/ (this feed reads {_folder(feed)}/incoming/)"
        )
    return Path(value)


def _conn_id(feed: Feed, kind: str) -> str:
    if feed.connector_kind != kind:
        raise SettingsError(f"feed {feed.name} is a {feed.connector_kind} feed, not {kind}")
    return feed.connector.conn_id  # type: ignore[union-attr]


def _lookup(
    env: Mapping[str, str], feed: Feed, conn_id: str, specific: str, general: str, what: str
) -> tuple[str, str]:
    for name in (specific, general):
        value = (env.get(name) or "").strip()
        if value:
            return name, value
    raise SettingsError(
        f"feed {feed.name} (connection {conn_id}): no {what} configured; "
        f"set {specific} (this connection only) or {general} (every such feed)"
    )


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {text!r}")
    return value


def _folder(feed: Feed) -> str:
    return getattr(feed.connector, "folder", "?")
