"""The departments' REST APIs, served for real over HTTP (Starlette on uvicorn).

``GET /api/v1/<dept>/<feed>?updated_since=ISO&updated_until=ISO&page=N&page_size=M`` with
``Authorization: Bearer <token>`` answers
``{"feed", "page", "page_size", "total", "next_page", "data": [...]}``. Records come in
``(updated_at, key)`` order; timestamps carry the source's offset (+08:00). Some first attempts are
answered 429 (with ``Retry-After``) or 503, as real gateways do; the same request retried succeeds.

Tests (and drills) can tell the server to misbehave on purpose: ``POST /admin/faults`` with the admin
bearer token (``EDW_SIM_ADMIN_TOKEN``, else the API token) and a fault plan
``{"feed": "alerts_110", "faults": ["500", "timeout"], "times": N}`` answers the feed's next ``N`` data
requests with those faults in turn (see :data:`FAULT_KINDS`); ``"records": [...]`` instead adds those
records to what the feed serves for its next ``N`` requests (bad input arriving through the API).
``GET /admin/faults`` shows the plans and how many faults were injected; ``DELETE /admin/faults`` clears them.
"""

from __future__ import annotations

import asyncio
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
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..catalog import Feed, all_feeds
from ..config import LOCAL_TZ
from .scenario import Scenario, load_scenario

TOKEN_ENV = "EDW_SIM_API_TOKEN"
ADMIN_TOKEN_ENV = "EDW_SIM_ADMIN_TOKEN"

# What ``POST /admin/faults`` can make a data request suffer:
FAULT_KINDS = {
    "500": "HTTP 500 Internal Server Error",
    "503": "HTTP 503 Service Unavailable",
    "429": "HTTP 429 Too Many Requests with Retry-After",
    "timeout": "no answer for sleep_seconds (longer than the client's timeout), then the page",
    "truncated_json": "HTTP 200 whose JSON body is cut in half (complete HTTP, broken JSON)",
    "drop_connection": "HTTP 200 headers and half the body, then the connection is closed",
    "empty_page": "HTTP 200 with data [] while total still counts the records",
}


def api_token() -> str:
    """The token the simulated APIs accept: ``EDW_SIM_API_TOKEN``, or a fresh random one."""
    return os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)


class FeedStore:
    """A feed's records as the API holds them: every simulated day's delivery, the latest version of each
    key, in ``(updated_at, key)`` order.

    Kept as one part per day file, each sorted, with a map of each key to the part that delivered it
    last: when a day arrives, the records of earlier parts that it delivers again are dropped from
    those parts. So a day costs a pass over its own records (not a re-sort, nor a look through the whole
    history), and a request reads only the parts its ``updated_at`` window reaches (a binary search in
    each), as a department's API over an indexed table answers in a time that does not grow with its
    history. The records of the last window asked for are kept for its following pages."""

    def __init__(self, folder: Path, feed: Feed) -> None:
        self.folder = folder
        self.feed = feed
        self._parts: list[tuple[str, int, pd.DataFrame]] = []  # (file name, mtime, records), day order
        self._latest: dict = {}  # key -> number of the part that delivered it last
        self._window: tuple[tuple, pd.DataFrame] | None = None
        self._lock = threading.Lock()

    def _keys(self, frame: pd.DataFrame) -> list[str]:
        return [k for k in self.feed.primary_key if k in frame.columns]

    def _key_values(self, frame: pd.DataFrame) -> list:
        """Each record's key (a value, or a tuple for a compound key); a missing value is None, so that
        records with a missing key are one key, as a group-by that keeps missing values has them."""
        columns = [frame[k].astype(object).where(frame[k].notna(), None).tolist() for k in self._keys(frame)]
        if not columns:
            return []
        return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))

    def _read(self, path: Path) -> pd.DataFrame:
        frame = pq.read_table(path).to_pandas()
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
        return frame.sort_values(["updated_at", *self._keys(frame)], kind="stable").reset_index(drop=True)

    def _refresh(self) -> None:
        files = sorted(self.folder.glob("*.parquet"))
        stamp = [(p.name, p.stat().st_mtime_ns) for p in files]
        held = [(name, mtime) for name, mtime, _ in self._parts]
        if stamp == held:
            return
        if stamp[: len(held)] != held:  # a day was written again or removed: read them all anew
            self._parts, self._latest, held = [], {}, []
        for path, (name, mtime) in zip(files[len(held) :], stamp[len(held) :], strict=True):
            part = self._read(path)
            number = len(self._parts)
            superseded: dict[int, set] = {}
            for key in self._key_values(part):
                before = self._latest.get(key)
                if before is not None and before != number:
                    superseded.setdefault(before, set()).add(key)
                self._latest[key] = number
            for before, keys in superseded.items():
                old_name, old_mtime, old = self._parts[before]
                kept = [key not in keys for key in self._key_values(old)]
                self._parts[before] = (old_name, old_mtime, old[kept])
            self._parts.append((name, mtime, part))
        self._window = None

    def window(self, since: pd.Timestamp | None, until: pd.Timestamp | None) -> pd.DataFrame:
        """The records with ``since < updated_at <= until`` (either bound may be None), in order."""
        with self._lock:
            self._refresh()
            if self._window is not None and self._window[0] == (since, until):
                return self._window[1]
            pieces = []
            for _, _, part in self._parts:
                stamps = part["updated_at"]
                low = int(stamps.searchsorted(since, side="right")) if since is not None else 0
                high = int(stamps.searchsorted(until, side="right")) if until is not None else len(part)
                if high > low:
                    pieces.append(part.iloc[low:high])
            if not pieces:
                frame = pd.DataFrame(columns=self.feed.column_names)
            else:
                frame = pd.concat(pieces, ignore_index=True)
                if len(pieces) > 1:
                    frame = frame.sort_values(["updated_at", *self._keys(frame)], kind="stable")
                frame = frame.reset_index(drop=True)
            self._window = ((since, until), frame)
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


def _column_json_values(values: pd.Series) -> list:
    """A column's values as ``_json_value`` gives them, converted a column at a time."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return [None if v is pd.NaT else v.isoformat() for v in values.dt.tz_convert(LOCAL_TZ)]
    if values.dtype != object and (
        pd.api.types.is_numeric_dtype(values.dtype)
        or pd.api.types.is_bool_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
    ):
        return values.astype(object).where(values.notna(), None).tolist()
    return [_json_value(v) for v in values]


def page_records(chunk: pd.DataFrame) -> list[dict]:
    """A page's records as JSON-ready dicts (timestamps with the source's +08:00 offset, missing values
    null), built a column at a time: a page of 5,000 positions took 0.15 s a cell at a time."""
    columns = list(chunk.columns)
    values = [_column_json_values(chunk[c]) for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _parse_time(text: str | None, name: str) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 timestamp, got {text!r}") from None
    return stamp.tz_localize(LOCAL_TZ).tz_convert("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


class DroppedConnection(ConnectionAbortedError):
    """Raised inside a streaming response on purpose: the server closes the socket mid-body."""


class FaultPlanError(ValueError):
    pass


def parse_fault_plan(body: object, feeds: dict[str, Feed]) -> dict:
    """A checked fault plan from the admin request's JSON body."""
    if not isinstance(body, dict):
        raise FaultPlanError("the fault plan must be a JSON object")
    names = {f.name for f in feeds.values()}
    feed = body.get("feed")
    if feed not in names:
        raise FaultPlanError(
            f"feed must be one of the API's feeds ({', '.join(sorted(names))}), got {feed!r}"
        )
    faults = body.get("faults", [])
    records = body.get("records")
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise FaultPlanError("faults must be a list of fault names")
    unknown = [f for f in faults if f not in FAULT_KINDS]
    if unknown:
        raise FaultPlanError(f"unknown fault(s) {unknown}; use {sorted(FAULT_KINDS)}")
    if records is not None and (
        not isinstance(records, list) or not all(isinstance(r, dict) for r in records)
    ):
        raise FaultPlanError("records must be a list of JSON objects")
    if not faults and records is None:
        raise FaultPlanError("give faults (a list of fault names) or records (a list of records)")
    if faults and records is not None:
        raise FaultPlanError("give faults or records, not both, in one plan")
    times = body.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise FaultPlanError(f"times must be a whole number >= 1, got {times!r}")
    sleep = body.get("sleep_seconds", 5.0)
    if not isinstance(sleep, (int, float)) or isinstance(sleep, bool) or not 0 <= sleep <= 600:
        raise FaultPlanError(f"sleep_seconds must be a number of seconds within 0..600, got {sleep!r}")
    return {
        "feed": feed,
        "faults": faults,
        "records": records,
        "remaining": times,
        "times": times,
        "sleep_seconds": float(sleep),
        "served": 0,
    }


class SimulatedApis:
    def __init__(
        self,
        sources_dir: Path,
        token: str,
        scenario: Scenario | None = None,
        fault_rate: float | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.sources_dir = sources_dir
        self.token = token
        self.admin_token = admin_token or token
        self.scenario = scenario or load_scenario()
        self.fault_rate = self.scenario.http["fault_rate"] if fault_rate is None else fault_rate
        self.feeds = {f.connector.endpoint: f for f in all_feeds() if f.connector_kind == "http_json"}  # type: ignore[union-attr]
        self.stores = {f.name: FeedStore(sources_dir / "http" / f.name, f) for f in self.feeds.values()}
        self.attempts: dict[str, int] = {}
        self.counts = {"requests": 0, "429": 0, "503": 0, "401": 0}
        self.plans: dict[str, dict] = {}  # feed -> the fault plan being served
        self.injected: dict[str, int] = {}  # fault kind -> how many times it was served
        self._lock = threading.Lock()

    def _planned(self, feed: Feed) -> tuple[str | None, list | None, float]:
        """The fault (or extra records) the feed's plan gives this request, and the plan's sleep."""
        with self._lock:
            plan = self.plans.get(feed.name)
            if plan is None or plan["remaining"] <= 0:
                return None, None, 0.0
            plan["remaining"] -= 1
            served = plan["served"]
            plan["served"] += 1
            if plan["records"] is not None:
                self.injected["records"] = self.injected.get("records", 0) + 1
                return None, plan["records"], 0.0
            kind = plan["faults"][served % len(plan["faults"])]
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind, None, plan["sleep_seconds"]

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

    def _authorised(self, request: Request, token: str | None = None) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        expected = token or self.token
        return scheme.lower() == "bearer" and secrets.compare_digest(
            value.strip().encode(), expected.encode()
        )

    def _fault_state(self) -> dict:
        with self._lock:
            return {
                "plans": [
                    {k: v for k, v in plan.items() if k != "records"}
                    | {"records": len(plan["records"]) if plan["records"] is not None else None}
                    for plan in self.plans.values()
                ],
                "injected": dict(self.injected),
                "injected_total": sum(self.injected.values()),
            }

    async def faults(self, request: Request) -> Response:
        """``GET`` the plans and counts, ``POST`` a plan (replacing the feed's), ``DELETE`` them all."""
        if not self._authorised(request, self.admin_token):
            return JSONResponse(
                {"error": "missing or invalid admin bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.method == "POST":
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                return JSONResponse({"error": f"the fault plan is not JSON: {exc}"}, status_code=400)
            try:
                plan = parse_fault_plan(body, self.feeds)
            except FaultPlanError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            with self._lock:
                self.plans[plan["feed"]] = plan
        elif request.method == "DELETE":
            feed = request.query_params.get("feed")
            with self._lock:
                if feed:
                    self.plans.pop(feed, None)
                else:
                    self.plans.clear()
        return JSONResponse(self._fault_state())

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
        planned, extra_records, sleep_seconds = self._planned(feed)
        if planned is None:
            fault = self._fault(request)
            if fault is not None:
                return fault
        else:
            with self._lock:  # an attempt the plan answered: no random fault on its retry
                key = str(request.url.path) + "?" + str(request.url.query)
                self.attempts[key] = self.attempts.get(key, 0) + 1
            if planned in ("500", "503"):
                return JSONResponse(
                    {"error": "injected fault: " + FAULT_KINDS[planned]}, status_code=int(planned)
                )
            if planned == "429":
                return JSONResponse(
                    {"error": "injected fault: rate limit exceeded, retry later"},
                    status_code=429,
                    headers={"Retry-After": str(self.scenario.http["retry_after_seconds"])},
                )
            if planned == "timeout":
                await asyncio.sleep(sleep_seconds)  # the client has given up by now; then answer anyway
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
        frame = self.stores[feed.name].window(since, until)
        extra = extra_records or []
        total = len(frame) + len(extra)
        first, last = (page - 1) * page_size, page * page_size
        chunk = frame.iloc[first:last]
        data = page_records(chunk)
        data += extra[max(0, first - len(frame)) : max(0, last - len(frame))]  # after the real records
        body = {
            "feed": feed.name,
            "page": page,
            "page_size": page_size,
            "total": total,
            "next_page": page + 1 if page * page_size < total else None,
            "data": [] if planned == "empty_page" else data,
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        if planned == "truncated_json":
            return Response(payload[: len(payload) // 2], media_type="application/json")
        if planned == "drop_connection":
            return StreamingResponse(_dropping(payload), media_type="application/json")
        return Response(payload, media_type="application/json")


async def _dropping(payload: bytes):
    """Half the body, then the connection closes (the server raises mid-response, after the headers)."""
    yield payload[: len(payload) // 2]
    raise DroppedConnection("injected fault: connection dropped mid-response")


def create_app(
    sources_dir: Path,
    token: str,
    scenario: Scenario | None = None,
    fault_rate: float | None = None,
    admin_token: str | None = None,
) -> Starlette:
    apis = SimulatedApis(sources_dir, token, scenario, fault_rate, admin_token)
    routes = [Route("/health", apis.health), Route("/api/v1", apis.index)]
    routes.append(Route("/admin/faults", apis.faults, methods=["GET", "POST", "DELETE"]))
    routes += [Route(endpoint, apis.records) for endpoint in apis.feeds]
    app = Starlette(routes=routes)
    app.state.apis = apis
    return app


def serve(sources_dir: Path, host: str, port: int, token: str, fault_rate: float | None = None) -> None:
    import uvicorn

    admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None
    uvicorn.run(
        create_app(sources_dir, token, fault_rate=fault_rate, admin_token=admin_token),
        host=host,
        port=port,
        log_level="info",
    )
