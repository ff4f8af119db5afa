"""The connectors against the simulated departments: the real HTTP server, the source database, drop folders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import sqlalchemy as sa

from emergency_dw import catalog
from emergency_dw.connectors import (
    SettingsError,
    SourceError,
    extract,
    extract_files,
    mark_processed,
    pending_files,
    read_file,
    sql,
)
from emergency_dw.connectors.settings import RetryPolicy, http_settings, sql_settings

from conftest import DAY

LOCAL = ZoneInfo("Asia/Shanghai")
START = dt.datetime.combine(DAY, dt.time(), tzinfo=LOCAL)
END = START + dt.timedelta(days=1)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=LOCAL)


def feeds_of(kind: str) -> list[catalog.Feed]:
    return [f for f in catalog.FEEDS if f.connector_kind == kind]


def manifest_rows(simulated: Path) -> dict[str, int]:
    manifest = json.loads((simulated / "truth" / DAY.isoformat() / "manifest.json").read_text())
    return {name: entry["rows"] for name, entry in manifest["feeds"].items()}


@pytest.fixture
def sources_env(simulated: Path, api_server, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDW_SOURCE_API_URL", api_server["base"])
    monkeypatch.setenv("EDW_SOURCE_API_TOKEN", api_server["token"])
    monkeypatch.setenv("EDW_SOURCE_DB_URL", "sqlite:///" + str(simulated / "sql" / "sources.sqlite"))
    monkeypatch.setenv("EDW_DROP_ROOT", str(simulated / "drop"))
    return simulated


def local_times(values: list) -> list[dt.datetime]:
    """Delivered timestamps as aware datetimes: ISO strings with an offset, or naive local wall-clock."""
    out = []
    for value in values:
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        out.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=LOCAL))
    return out


# ---------------------------------------------------------------- every feed, the day's delivery
def test_http_feeds_deliver_the_day_despite_faults(sources_env: Path):
    expected = manifest_rows(sources_env)
    retries = 0
    for feed in feeds_of("http_json"):
        got = extract(feed, START, END)
        retries += got.retries
        assert got.requests >= 1 + got.retries
        assert got.source.endswith(feed.connector.endpoint)
        if feed.snapshot:
            assert got.rows <= expected[feed.name], feed.name
            whole = extract(feed, EPOCH, END)
            retries += whole.retries
            assert whole.rows == expected[feed.name], feed.name
        else:
            assert got.rows == expected[feed.name], feed.name
        if got.rows:
            assert got.table.column_names == feed.column_names
            assert pa.types.is_string(got.table.schema.field("updated_at").type), "timestamps as delivered"
            stamps = local_times(got.table.column("updated_at").to_pylist())
            assert all(START < s <= END for s in stamps), feed.name
        else:
            assert got.table.column_names == feed.column_names
    assert retries > 0, "the server's 20% faults were retried"


def test_sql_feeds_deliver_the_day(sources_env: Path):
    expected = manifest_rows(sources_env)
    for feed in feeds_of("sql"):
        got = extract(feed, START, END)
        assert set(got.table.column_names) == set(feed.column_names)
        assert feed.connector.table in got.source and "sources.sqlite" in got.source
        if feed.snapshot:
            assert got.rows <= expected[feed.name], feed.name
            assert extract(feed, EPOCH, END).rows == expected[feed.name], feed.name
        else:
            assert got.rows == expected[feed.name], feed.name
        stamps = local_times(got.table.column("updated_at").to_pylist())
        assert all(START < s <= END for s in stamps), feed.name
        assert stamps == sorted(stamps), "ordered by the watermark"


def test_file_drops_deliver_the_day(sources_env: Path):
    expected = manifest_rows(sources_env)
    for feed in feeds_of("file_drop"):
        got = extract(feed, START, END)
        assert got.rows == expected[feed.name], feed.name
        assert got.files and all(p.parent.name == "incoming" for p in got.files)
        assert set(got.table.column_names) == {c.header for c in feed.columns}, (
            "headers as the source spells them"
        )
        assert extract(feed, None, None).rows == got.rows, "all pending when start is None"
        later = extract(feed, END, END + dt.timedelta(days=1))
        assert later.rows == 0 and later.files == [], "files of another day are left alone"
        assert later.table.column_names == [c.header for c in feed.columns]


# ---------------------------------------------------------------- watermark and chunks
def test_watermark_interval_is_respected(sources_env: Path):
    noon = START + dt.timedelta(hours=12)
    for name in ("alerts_110", "dispatch_records"):
        feed = catalog.get_feed(name)
        whole = local_times(extract(feed, START, END).table.column("updated_at").to_pylist())
        half = local_times(extract(feed, noon, END).table.column("updated_at").to_pylist())
        assert 0 < len(half) < len(whole), name
        assert all(noon < s <= END for s in half), name
        assert sorted(half) == sorted(s for s in whole if s > noon), name


def test_sql_reads_in_chunks_and_gives_the_same_rows(sources_env: Path):
    feed = catalog.get_feed("cable_temperature_readings")
    small = dataclasses.replace(feed, connector=dataclasses.replace(feed.connector, chunk_rows=97))
    default = extract(feed, START, END)
    chunked = extract(small, START, END)
    assert chunked.table.column(0).num_chunks == math.ceil(default.rows / 97) > 1
    assert chunked.table.combine_chunks().equals(default.table.combine_chunks())


def test_sql_lost_connection_mid_read_raises_naming_feed_and_table(
    sources_env: Path, monkeypatch: pytest.MonkeyPatch
):
    feed = catalog.get_feed("cable_temperature_readings")
    small = dataclasses.replace(feed, connector=dataclasses.replace(feed.connector, chunk_rows=100))
    opened: list = []

    def remember(dbapi_connection, _record) -> None:
        opened.append(dbapi_connection)

    chunks: list[int] = []
    real_chunk = sql._chunk_table

    def chunk_then_drop(types, rows):
        chunks.append(len(rows))
        if len(chunks) == 2:
            for connection in opened:
                connection.close()  # the database goes away between two fetches
        return real_chunk(types, rows)

    monkeypatch.setattr(sql, "_chunk_table", chunk_then_drop)
    sa.event.listen(sa.engine.Engine, "connect", remember)
    try:
        with pytest.raises(SourceError) as caught:
            extract(small, START, END)
    finally:
        sa.event.remove(sa.engine.Engine, "connect", remember)
    message = str(caught.value)
    assert "cable_temperature_readings" in message and "table" in message
    assert len(chunks) == 2, "it failed mid-read, after some chunks had come"


def test_sql_missing_table_names_it(sources_env: Path):
    feed = catalog.get_feed("alerts_120")
    wrong = dataclasses.replace(feed, connector=dataclasses.replace(feed.connector, table="no_such_table"))
    with pytest.raises(SourceError, match="no_such_table.*EDW_SOURCE_DB_URL"):
        extract(wrong, START, END)


# ---------------------------------------------------------------- files: encodings, sheets, processed/
def test_gb18030_file_needs_its_declared_encoding(sources_env: Path):
    feed = catalog.get_feed("boiler_inventory")
    (path,) = pending_files(feed, sources_env / "drop")
    with pytest.raises(SourceError) as caught:
        read_file(dataclasses.replace(feed, encoding="utf-8"), path)
    message = str(caught.value)
    assert path.name in message and "utf-8" in message and "byte" in message
    table = read_file(feed, path)
    assert table.column_names == [c.header for c in feed.columns]
    assert "锅炉编号" in table.column_names
    assert all(pa.types.is_string(t) for t in table.schema.types), "csv cells stay text"
    assert any("有限公司" in (v or "") for v in table.column("企业名称").to_pylist())


def test_xlsx_headers_are_chinese_and_a_missing_sheet_is_named(sources_env: Path):
    feed = catalog.get_feed("old_houses")
    (path,) = pending_files(feed, sources_env / "drop")
    table = read_file(feed, path)
    assert table.column_names == [c.header for c in feed.columns]
    assert table.column_names[0] == "房屋编号"
    wrong = dataclasses.replace(feed, connector=dataclasses.replace(feed.connector, sheet="不存在"))
    with pytest.raises(SourceError) as caught:
        read_file(wrong, path)
    assert path.name in str(caught.value) and "不存在" in str(caught.value)


def test_mark_processed_moves_the_files(sources_env: Path, tmp_path: Path):
    root = tmp_path / "drop"
    shutil.copytree(sources_env / "drop", root)
    feed = catalog.get_feed("town_incident_reports")
    got = extract_files(feed, START, END, root)
    assert got.files
    moved = mark_processed(got.files, root)
    assert pending_files(feed, root) == []
    assert all(p.parent.name == "processed" and p.exists() for p in moved)
    assert [p.name for p in moved] == [p.name for p in got.files]
    assert mark_processed(got.files, root) == [], "a re-run moves nothing twice"
    again = extract_files(feed, START, END, root)
    assert again.rows == got.rows, "a rerun of the interval reads the day's processed files again"
    assert mark_processed(again.files, root) == [], "and leaves them where they are"


def test_files_with_other_columns_are_unioned(sources_env: Path, tmp_path: Path):
    feed = catalog.get_feed("flood_prone_roads")
    root = tmp_path / "drop"
    shutil.copytree(sources_env / "drop", root)
    (path,) = pending_files(feed, root)
    text = path.read_text(encoding="utf-8").replace("max_water_depth_cm", "max_depth_cm", 1)
    (path.parent / path.name.replace(f"{DAY:%Y%m%d}", f"{DAY:%Y%m%d}_2")).write_text(text, encoding="utf-8")
    got = extract_files(feed, START, END, root)
    assert len(got.files) == 2
    assert {"max_water_depth_cm", "max_depth_cm"} <= set(got.table.column_names)
    half = got.rows // 2
    assert got.table.column("max_depth_cm").slice(0, half).null_count == half


# ---------------------------------------------------------------- HTTP failures
def test_wrong_token_fails_at_once_naming_the_token(sources_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDW_SOURCE_API_TOKEN", "not-the-token")
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        extract(catalog.get_feed("alerts_110"), START, END)
    assert "token" in str(caught.value) and "EDW_SOURCE_API_TOKEN" in str(caught.value)
    assert "401" in str(caught.value)
    assert time.monotonic() - started < 5, "no backoff for a refused token"


class Scripted:
    """A tiny HTTP server on 127.0.0.1 answering request number n (from 0) with ``respond(handler, n)``."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, int], None]) -> None:
        self.requests = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with lock:
                    n = outer.requests
                    outer.requests += 1
                respond(self, n)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


WARNINGS = [
    {"warning_id": f"W{i}", "level": "blue", "issued_at": "2026-11-27T08:00:00+08:00", "updated_at": None}
    for i in range(3)
]


def page_body(handler: BaseHTTPRequestHandler, total: int | None = None) -> bytes:
    page = int(handler.path.split("page=")[1].split("&")[0])
    data = WARNINGS[(page - 1) * 2 : page * 2]
    return json.dumps(
        {
            "feed": "weather_warnings",
            "page": page,
            "page_size": 2,
            "total": len(WARNINGS) if total is None else total,
            "next_page": page + 1 if page * 2 < len(WARNINGS) else None,
            "data": data,
        }
    ).encode()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EDW_HTTP_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("EDW_SOURCE_API_TOKEN", "t")
    yield


def test_truncated_json_and_dropped_connection_are_retried(fast_retries, monkeypatch: pytest.MonkeyPatch):
    def respond(handler, n):
        if n == 0:
            body = page_body(handler)
            send(handler, 200, body[: len(body) // 2])  # truncated JSON, complete HTTP
        elif n == 1:
            send(handler, 200, page_body(handler)[:10], length=5000)  # the connection drops mid-body
        else:
            send(handler, 200, page_body(handler))

    with Scripted(respond) as server:
        monkeypatch.setenv("EDW_SOURCE_API_URL", server.base)
        got = extract(catalog.get_feed("weather_warnings"), START, END)
    assert got.rows == 3 and got.retries == 2 and got.requests == 4 == server.requests
    assert got.table.column("warning_id").to_pylist() == ["W0", "W1", "W2"]
    assert got.table.column("issued_at").to_pylist()[0] == "2026-11-27T08:00:00+08:00"


def test_always_503_gives_up_after_max_attempts(fast_retries, monkeypatch: pytest.MonkeyPatch):
    with Scripted(lambda handler, n: send(handler, 503, b'{"error": "down"}')) as server:
        monkeypatch.setenv("EDW_SOURCE_API_URL", server.base)
        with pytest.raises(SourceError) as caught:
            extract(catalog.get_feed("weather_warnings"), START, END)
    message = str(caught.value)
    assert server.requests == 3
    assert "weather_warnings" in message and server.base in message and "page 1" in message
    assert "503" in message and "3 attempts" in message


def test_refused_token_is_not_retried(fast_retries, monkeypatch: pytest.MonkeyPatch):
    with Scripted(lambda handler, n: send(handler, 401, b'{"error": "bad token"}')) as server:
        monkeypatch.setenv("EDW_SOURCE_API_URL", server.base)
        with pytest.raises(SourceError, match="token"):
            extract(catalog.get_feed("weather_warnings"), START, END)
    assert server.requests == 1


def test_429_honours_retry_after(fast_retries, monkeypatch: pytest.MonkeyPatch):
    def respond(handler, n):
        if n == 0:
            handler.send_response(429)
            handler.send_header("Retry-After", "1")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            send(handler, 200, page_body(handler))

    with Scripted(respond) as server:
        monkeypatch.setenv("EDW_SOURCE_API_URL", server.base)
        started = time.monotonic()
        got = extract(catalog.get_feed("weather_warnings"), START, END)
    assert got.rows == 3 and got.retries == 1
    assert time.monotonic() - started >= 1.0


def test_incomplete_or_changing_pull_is_refused(fast_retries, monkeypatch: pytest.MonkeyPatch):
    def changing(handler, n):
        send(handler, 200, page_body(handler, total=3 if "page=1" in handler.path else 4))

    def short(handler, n):
        send(handler, 200, page_body(handler, total=5))

    for respond, expected in ((changing, "changed during the pull"), (short, "announced 5 records")):
        with Scripted(respond) as server:
            monkeypatch.setenv("EDW_SOURCE_API_URL", server.base)
            with pytest.raises(SourceError, match=expected):
                extract(catalog.get_feed("weather_warnings"), START, END)


# ---------------------------------------------------------------- settings
def test_settings_come_from_the_environment_and_missing_ones_are_named():
    feed = catalog.get_feed("hazard_inspections")
    with pytest.raises(SettingsError) as caught:
        http_settings(feed, env={})
    message = str(caught.value)
    assert "hazard_inspections" in message and "src_yjj_api" in message
    assert "EDW_SOURCE_SRC_YJJ_API_URL" in message and "EDW_SOURCE_API_URL" in message
    env = {
        "EDW_SOURCE_API_URL": "http://general",
        "EDW_SOURCE_API_TOKEN": "general-token",
        "EDW_SOURCE_SRC_YJJ_API_URL": "http://yjj/",
        "EDW_HTTP_MAX_ATTEMPTS": "7",
    }
    settings = http_settings(feed, env=env)
    assert settings.base_url == "http://yjj" and settings.token == "general-token"
    assert settings.retry == RetryPolicy(max_attempts=7)
    assert "general-token" not in repr(settings), "the token never shows in logs"
    other = http_settings(catalog.get_feed("alerts_110"), env=env)
    assert other.base_url == "http://general"
    with pytest.raises(SettingsError, match="EDW_SOURCE_SRC_YJJ_API_TOKEN"):
        http_settings(feed, env={"EDW_SOURCE_API_URL": "http://general"})
    with pytest.raises(SettingsError, match="EDW_SOURCE_DB_URL"):
        sql_settings(catalog.get_feed("rescuers"), env={})
    with pytest.raises(SettingsError, match="EDW_HTTP_TIMEOUT_SECONDS"):
        RetryPolicy.from_env({"EDW_HTTP_TIMEOUT_SECONDS": "soon"})
    assert RetryPolicy.from_env({}) == RetryPolicy(5, 0.5, 30.0, 30.0)


def test_missing_drop_root_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EDW_DROP_ROOT", raising=False)
    with pytest.raises(SettingsError, match="schools.*EDW_DROP_ROOT"):
        extract(catalog.get_feed("schools"), START, END)
