"""The departments' REST APIs, served for real over HTTP (Starlette on uvicorn).

``GET /api/v1/<dept>/<feed>?updated_since=ISO&updated_until=ISO&page=N&page_size=M`` with
``Authorization: Bearer <token>`` answers
``{"feed", "page", "page_size", "total", "next_page", "data": [...]}``. Records come in
``(updated_at, key)`` order; timestamps carry the source's offset (+08:00). Some first attempts are
answered 429 (with ``Retry-After``) or 503, as real gateways do; the same request retried succeeds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import secrets
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..catalog import Feed, all_feeds
from ..config import LOCAL_TZ
from .scenario import Scenario, load_scenario

TOKEN_ENV = "EDW_SIM_API_TOKEN"


def api_token() -> str:
    """The token the simulated APIs accept: ``EDW_SIM_API_TOKEN``, or a fresh random one."""
    return os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)


class FeedStore:
    """A feed's records as the API holds them: every simulated day's delivery, latest version per key."""

    def __init__(self, folder: Path, feed: Feed) -> None:
        self.folder = folder
        self.feed = feed
        self._cache: tuple[tuple, pd.DataFrame] | None = None
        self._lock = threading.Lock()

    def frame(self) -> pd.DataFrame:
        files = sorted(self.folder.glob("*.parquet"))
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in files)
        with self._lock:
            if self._cache and self._cache[0] == stamp:
                return self._cache[1]
            parts = []
            for order, path in enumerate(files):
                part = pq.read_table(path).to_pandas()
                part["_day"] = order
                parts.append(part)
            if not parts:
                frame = pd.DataFrame(columns=self.feed.column_names)
            else:
                frame = pd.concat(parts, ignore_index=True)
                keys = [k for k in self.feed.primary_key if k in frame.columns]
                latest = frame.groupby(keys, dropna=False)["_day"].transform("max")
                frame = frame[frame["_day"] == latest].drop(columns="_day")
                frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
                frame = frame.sort_values(["updated_at", *keys], kind="stable").reset_index(drop=True)
            self._cache = (stamp, frame)
            return frame


def _json_value(value):
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert(LOCAL_TZ).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _parse_time(text: str | None, name: str) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 timestamp, got {text!r}") from None
    return stamp.tz_localize(LOCAL_TZ).tz_convert("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


class SimulatedApis:
    def __init__(
        self, sources_dir: Path, token: str, scenario: Scenario | None = None, fault_rate: float | None = None
    ) -> None:
        self.sources_dir = sources_dir
        self.token = token
        self.scenario = scenario or load_scenario()
        self.fault_rate = self.scenario.http["fault_rate"] if fault_rate is None else fault_rate
        self.feeds = {f.connector.endpoint: f for f in all_feeds() if f.connector_kind == "http_json"}  # type: ignore[union-attr]
        self.stores = {f.name: FeedStore(sources_dir / "http" / f.name, f) for f in self.feeds.values()}
        self.attempts: dict[str, int] = {}
        self.counts = {"requests": 0, "429": 0, "503": 0, "401": 0}
        self._lock = threading.Lock()

    def _fault(self, request: Request) -> Response | None:
        """A first attempt at some requests gets 429 or 503; a retry of the same request never does."""
        key = str(request.url.path) + "?" + str(request.url.query)
        with self._lock:
            attempt = self.attempts.get(key, 0)
            self.attempts[key] = attempt + 1
        if attempt > 0 or self.fault_rate <= 0:
            return None
        digest = hashlib.sha256(f"{self.scenario.seed}|{key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.fault_rate:
            return None
        if int.from_bytes(digest[8:9], "big") % 2 == 0:
            self.counts["429"] += 1
            return JSONResponse(
                {"error": "rate limit exceeded, retry later"},
                status_code=429,
                headers={"Retry-After": str(self.scenario.http["retry_after_seconds"])},
            )
        self.counts["503"] += 1
        return JSONResponse({"error": "upstream temporarily unavailable"}, status_code=503)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "feeds": len(self.feeds)})

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip(), self.token)

    async def index(self, request: Request) -> Response:
        if not self._authorised(request):
            self.counts["401"] += 1
            return JSONResponse({"error": "missing or invalid bearer token"}, status_code=401)
        return JSONResponse(
            {
                "feeds": [
                    {"feed": f.name, "endpoint": ep, "department": f.department}
                    for ep, f in sorted(self.feeds.items())
                ]
            }
        )

    async def records(self, request: Request) -> Response:
        self.counts["requests"] += 1
        if not self._authorised(request):
            self.counts["401"] += 1
            return JSONResponse(
                {"error": "missing or invalid bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        path = request.url.path
        feed = self.feeds.get(path)
        if feed is None:
            return JSONResponse({"error": f"no API at {path}"}, status_code=404)
        fault = self._fault(request)
        if fault is not None:
            return fault
        params = request.query_params
        try:
            since = _parse_time(params.get("updated_since"), "updated_since")
            until = _parse_time(params.get("updated_until"), "updated_until")
            page = int(params.get("page", "1"))
            page_size = int(params.get("page_size", str(self.scenario.http["default_page_size"])))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if page < 1 or not 1 <= page_size <= self.scenario.http["max_page_size"]:
            return JSONResponse(
                {"error": f"page must be >= 1 and page_size within 1..{self.scenario.http['max_page_size']}"},
                status_code=400,
            )
        frame = self.stores[feed.name].frame()
        if since is not None:
            frame = frame[frame["updated_at"] > since]
        if until is not None:
            frame = frame[frame["updated_at"] <= until]
        total = len(frame)
        chunk = frame.iloc[(page - 1) * page_size : page * page_size]
        columns = list(chunk.columns)
        data = [
            {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
            for row in chunk.itertuples(index=False)
        ]
        body = {
            "feed": feed.name,
            "page": page,
            "page_size": page_size,
            "total": total,
            "next_page": page + 1 if page * page_size < total else None,
            "data": data,
        }
        return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


def create_app(
    sources_dir: Path, token: str, scenario: Scenario | None = None, fault_rate: float | None = None
) -> Starlette:
    apis = SimulatedApis(sources_dir, token, scenario, fault_rate)
    routes = [Route("/health", apis.health), Route("/api/v1", apis.index)]
    routes += [Route(endpoint, apis.records) for endpoint in apis.feeds]
    app = Starlette(routes=routes)
    app.state.apis = apis
    return app


def serve(sources_dir: Path, host: str, port: int, token: str, fault_rate: float | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(sources_dir, token, fault_rate=fault_rate), host=host, port=port, log_level="info")
