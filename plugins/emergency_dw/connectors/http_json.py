"""A department's REST API: bearer token, pages, an ``updated_since``/``updated_until`` watermark.

``GET <base><endpoint>?updated_since=&updated_until=&page=&page_size=`` answers
``{"feed", "page", "page_size", "total", "next_page", "data": [...]}``; the interval is
``(updated_since, updated_until]``. Transient failures (429, 5xx, timeouts, dropped connections,
truncated or malformed JSON, an empty page while ``total`` says records remain) are retried with
exponential backoff and jitter; a refused token or a
wrong endpoint fails at once. The pull is checked complete: records received == ``total``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import time
from typing import Any

import httpx
import pyarrow as pa

from ..catalog import Feed
from .base import Extract, SourceError
from .settings import HttpSettings

RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx


class _Transient(Exception):
    """One attempt failed in a way a retry may cure."""

    def __init__(self, last: str, retry_after: float | None = None) -> None:
        super().__init__(last)
        self.last = last
        self.retry_after = retry_after


def extract_http(
    feed: Feed, start: dt.datetime | None, end: dt.datetime | None, settings: HttpSettings
) -> Extract:
    """Every record of ``feed`` with ``start < updated_at <= end`` (no bound where None)."""
    connector = feed.connector
    if feed.connector_kind != "http_json":
        raise ValueError(f"feed {feed.name} is a {feed.connector_kind} feed, not http_json")
    url = settings.base_url + connector.endpoint  # type: ignore[union-attr]
    params: dict[str, Any] = {"page_size": connector.page_size}  # type: ignore[union-attr]
    if start is not None:
        params["updated_since"] = _aware(start, "start").isoformat()
    if end is not None:
        params["updated_until"] = _aware(end, "end").isoformat()
    headers = {"Authorization": f"Bearer {settings.token}", "Accept": "application/json"}
    counts = {"requests": 0, "retries": 0}
    records: list[dict[str, Any]] = []
    total: int | None = None
    page: int | None = 1
    seen_pages: set[int] = set()
    with httpx.Client(headers=headers, timeout=settings.retry.timeout_seconds) as client:
        while page is not None:
            if page in seen_pages:
                raise SourceError(f"feed {feed.name}: {url} sent page {page} twice (next_page loops)")
            seen_pages.add(page)
            body = _get_page(client, feed, url, {**params, "page": page}, settings, counts, len(records))
            if total is None:
                total = body["total"]
            elif body["total"] != total:
                raise SourceError(
                    f"feed {feed.name}: {url} reported total {total} on page 1 but {body['total']} on "
                    f"page {page}: the records changed during the pull; run the extraction again"
                )
            records.extend(body["data"])
            if len(records) > total:
                raise SourceError(
                    f"feed {feed.name}: {url} sent {len(records)} records by page {page}, more than its "
                    f"total {total}; the API's paging is inconsistent"
                )
            page = body["next_page"]
    if len(records) != total:
        raise SourceError(
            f"feed {feed.name}: {url} announced {total} records but sent {len(records)}; "
            "the pull is incomplete, nothing of it may load"
        )
    return Extract(
        feed=feed.name,
        table=records_to_table(records, [c.header for c in feed.columns]),
        source=url,
        interval_start=start,  # type: ignore[arg-type]
        interval_end=end,  # type: ignore[arg-type]
        requests=counts["requests"],
        retries=counts["retries"],
    )


def records_to_table(records: list[dict[str, Any]], empty_columns: list[str]) -> pa.Table:
    """JSON records as an Arrow table, values as delivered (timestamps stay strings).

    Columns are the union of every record's keys in first-seen order (``pa.Table.from_pylist`` would
    take them from the first record only); with no records, ``empty_columns`` as string columns.
    """
    if not records:
        return pa.table({name: pa.array([], pa.string()) for name in empty_columns})
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return pa.table({name: _array([r.get(name) for r in records]) for name in names})


def _array(values: list[Any]) -> pa.Array:
    """Arrow's inferred type, or text when a column mixes kinds (a number where text was, ...) or holds
    JSON objects or lists (kept as their JSON text: no record field is a nested structure)."""
    if not any(isinstance(v, (dict, list)) for v in values):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array(
        [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values],
        pa.string(),
    )


def _get_page(
    client: httpx.Client,
    feed: Feed,
    url: str,
    params: dict[str, Any],
    settings: HttpSettings,
    counts: dict[str, int],
    received: int = 0,
) -> dict[str, Any]:
    """One page, retried while it fails transiently; ``received``: records of the earlier pages."""
    policy = settings.retry
    last = "no attempt made"
    for attempt in range(1, policy.max_attempts + 1):
        if attempt > 1:
            counts["retries"] += 1
        counts["requests"] += 1
        try:
            body = _attempt(client, feed, url, params, settings)
            if not body["data"] and body["total"] > received:
                raise _Transient(
                    f"HTTP 200 with an empty page {params['page']} while total {body['total']} says "
                    f"{body['total'] - received} more records remain"
                )
            return body
        except _Transient as exc:
            last = exc.last
            if attempt < policy.max_attempts:
                time.sleep(
                    _delay(policy.backoff_seconds, policy.max_backoff_seconds, attempt, exc.retry_after)
                )
    raise SourceError(
        f"feed {feed.name}: gave up on {url} page {params['page']} after {policy.max_attempts} attempts; "
        f"last: {last}. The department's API is failing: try again later (or raise EDW_HTTP_MAX_ATTEMPTS)"
    )


def _attempt(
    client: httpx.Client, feed: Feed, url: str, params: dict[str, Any], settings: HttpSettings
) -> dict[str, Any]:
    try:
        response = client.get(url, params=params)
        content = response.content
    except httpx.TimeoutException as exc:
        raise _Transient(
            f"timeout after {settings.retry.timeout_seconds:g} s ({type(exc).__name__})"
        ) from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise _Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc
    status = response.status_code
    if status in RETRY_STATUSES or status >= 500:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        raise _Transient(f"HTTP {status} {_snippet(content)}", retry_after)
    if status in (401, 403):
        raise SourceError(
            f"feed {feed.name}: {url} refused the bearer token (HTTP {status}: {_snippet(content)}); "
            f"check the token in {settings.token_variable}"
        )
    if status == 404:
        raise SourceError(
            f"feed {feed.name}: no API at {url} (HTTP 404); check the base URL in {settings.url_variable} "
            f"and the feed's endpoint in the catalog"
        )
    if status != 200:
        raise SourceError(f"feed {feed.name}: {url} answered HTTP {status}: {_snippet(content)}")
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise _Transient(f"HTTP 200 with malformed or truncated JSON ({len(content)} bytes: {exc})") from exc
    problem = _shape_problem(body)
    if problem:
        raise _Transient(f"HTTP 200 with an unexpected body: {problem}")
    return body


def _shape_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    if not isinstance(body.get("data"), list) or not all(isinstance(r, dict) for r in body["data"]):
        return "'data' is not a list of records"
    total = body.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        return f"'total' is not a count: {total!r}"
    next_page = body.get("next_page")
    if next_page is not None and (not isinstance(next_page, int) or isinstance(next_page, bool)):
        return f"'next_page' is neither a page number nor null: {next_page!r}"
    return None


def _delay(base: float, cap: float, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (half fixed, half random); Retry-After, when given, is a floor."""
    backoff = min(cap, base * 2 ** (attempt - 1))
    backoff = backoff / 2 + random.uniform(0, backoff / 2)
    if retry_after is not None:
        backoff = max(backoff, min(cap, retry_after) + random.uniform(0, base / 2))
    return backoff


def _retry_after(value: str | None) -> float | None:
    """``Retry-After``: seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"interval {name} {value!r} has no time zone; pass an aware datetime")
    return value


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
