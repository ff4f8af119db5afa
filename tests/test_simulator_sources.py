"""The simulated sources served for real: the HTTP APIs (uvicorn) and the source databases."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from emergency_dw import catalog
from emergency_dw.simulator.run import Simulator, source_db_url

from conftest import DAY, POSTGRES_URL
from sources import delivered

FEED = catalog.get_feed("enterprise_registry")


def _get(server, params: dict, token: str | None = "ok", endpoint: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server['token'] if token == 'ok' else token}"} if token else {}
    return httpx.get(
        server["base"] + (endpoint or FEED.connector.endpoint), params=params, headers=headers, timeout=30
    )


def _get_retrying(server, params: dict, endpoint: str | None = None) -> tuple[httpx.Response, list[int]]:
    statuses = []
    for _ in range(5):
        response = _get(server, params, endpoint=endpoint)
        statuses.append(response.status_code)
        if response.status_code not in (429, 503):
            return response, statuses
        time.sleep(float(response.headers.get("Retry-After", "0.1")))
    raise AssertionError(f"no success after retries: {statuses}")


def test_health_needs_no_token_but_data_does(api_server):
    assert httpx.get(api_server["base"] + "/health").json()["status"] == "ok"
    missing = _get(api_server, {"page": 1}, token=None)
    assert missing.status_code == 401 and "token" in missing.json()["error"]
    wrong = _get(api_server, {"page": 1}, token="not-the-token")
    assert wrong.status_code == 401
    listing = httpx.get(
        api_server["base"] + "/api/v1", headers={"Authorization": f"Bearer {api_server['token']}"}
    ).json()
    assert {f["feed"] for f in listing["feeds"]} == {
        f.name for f in catalog.FEEDS if f.connector_kind == "http_json"
    }


def test_pages_together_are_the_whole_feed_exactly_once(api_server, simulated: Path):
    expected = delivered(simulated, FEED, DAY)
    records, page, statuses = [], 1, []
    while page:
        response, tried = _get_retrying(api_server, {"page": page, "page_size": 37})
        statuses += tried
        body = response.json()
        assert body["total"] == len(expected)
        records += body["data"]
        page = body["next_page"]
    assert len(records) == len(expected)
    got = pd.DataFrame(records)
    assert sorted(got["enterprise_id"]) == sorted(expected["enterprise_id"])
    assert list(got.columns) == FEED.column_names
    assert got["updated_at"].str.endswith("+08:00").all(), "timestamps carry the source's offset"
    stamps = pd.to_datetime(got["updated_at"], utc=True)
    assert stamps.is_monotonic_increasing


def test_updated_since_watermark_returns_only_newer_records(api_server, simulated: Path):
    expected = delivered(simulated, FEED, DAY)
    stamps = pd.to_datetime(expected["updated_at"], utc=True).sort_values()
    watermark = stamps.iloc[len(stamps) // 2]
    response, _ = _get_retrying(api_server, {"updated_since": watermark.isoformat(), "page_size": 10000})
    body = response.json()
    assert body["total"] == int((stamps > watermark).sum()) > 0
    assert all(pd.Timestamp(r["updated_at"]) > watermark for r in body["data"])
    naive_local = watermark.tz_convert("Asia/Shanghai").tz_localize(None).isoformat()
    response, _ = _get_retrying(api_server, {"updated_since": naive_local, "page_size": 10000})
    assert response.json()["total"] == body["total"], "a naive watermark is read in the source's zone"
    bad = _get(api_server, {"updated_since": "yesterday"})
    assert bad.status_code == 400 and "updated_since" in bad.json()["error"]


def test_429_and_503_are_emitted_and_a_retry_succeeds(api_server):
    seen: dict[int, int] = {}
    for size in range(1, 121):
        first = _get(api_server, {"page": 1, "page_size": size})
        seen[first.status_code] = seen.get(first.status_code, 0) + 1
        if first.status_code == 429:
            assert int(first.headers["Retry-After"]) >= 1
        if first.status_code in (429, 503):
            again = _get(api_server, {"page": 1, "page_size": size})
            assert again.status_code == 200
    assert seen.get(429, 0) > 0 and seen.get(503, 0) > 0 and seen.get(200, 0) > 60


def test_sql_source_holds_each_feed_as_a_table_read_by_watermark(simulated: Path):
    engine = sa.create_engine(source_db_url(simulated))
    inspector = sa.inspect(engine)
    sql_feeds = [f for f in catalog.FEEDS if f.connector_kind == "sql"]
    assert {f.connector.table for f in sql_feeds} <= set(inspector.get_table_names())
    feed = catalog.get_feed("dispatch_records")
    with engine.connect() as conn:
        everything = pd.read_sql(sa.text("select * from dispatch_records order by updated_at"), conn)
        watermark = everything["updated_at"].iloc[len(everything) // 2]
        newer = pd.read_sql(
            sa.text("select * from dispatch_records where updated_at > :wm"), conn, params={"wm": watermark}
        )
    assert 0 < len(newer) < len(everything)
    assert (newer["updated_at"] > watermark).all()
    assert set(everything.columns) == set(feed.column_names)
    engine.dispose()


@pytest.mark.postgres
def test_source_database_can_be_postgres(tmp_path: Path):
    """`--source-db-url` puts the departments' tables in any SQLAlchemy database: here a fresh Postgres one."""
    name = f"edw_test_sources_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        feeds = ["cable_temperature_readings", "rescuers", "alerts_120"]
        Simulator(tmp_path, scale=0.01, db_url=url.render_as_string(hide_password=False)).simulate_day(
            DAY, feeds=feeds
        )
        Simulator(tmp_path / "lite", scale=0.01).simulate_day(DAY, feeds=feeds)
        pg = sa.create_engine(url)
        lite = sa.create_engine(source_db_url(tmp_path / "lite"))
        for feed in feeds:
            table = catalog.get_feed(feed).connector.table
            with pg.connect() as a, lite.connect() as b:
                count = a.execute(sa.text(f"select count(*) from {table}")).scalar_one()
                assert count == b.execute(sa.text(f"select count(*) from {table}")).scalar_one() > 0
        pg.dispose()
        lite.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def test_edw_simulate_prints_where_the_data_is(tmp_path: Path):
    import subprocess
    import sys

    env = dict(os.environ, EDW_DATA_DIR=str(tmp_path / "data"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "simulate",
            "--date",
            DAY.isoformat(),
            "--scale",
            "0.01",
            "--feed",
            "alerts_110",
            "--feed",
            "boiler_inventory",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "alerts_110" in out and "boiler_inventory" in out and "Where the data is" in out
    assert (tmp_path / "data" / "sources" / "truth" / DAY.isoformat() / "manifest.json").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "emergency_dw.cli", "simulate", "--feed", "nope"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no feed named 'nope'" in bad.stdout


def test_the_api_serves_each_key_once_in_its_latest_version_across_days(tmp_path: Path):
    """A department's API over several days' deliveries: a record delivered again on a later day is
    served once, as delivered last; a window reads only what changed within it, in (updated_at, key)
    order; a day added later supersedes what the API already held."""
    from emergency_dw.simulator.server import FeedStore

    feed = catalog.get_feed("rescuer_positions")
    folder = tmp_path / "http" / feed.name
    folder.mkdir(parents=True)
    key = feed.primary_key[0]

    def deliver(name: str, rows: list[tuple[str, str, str]]) -> None:
        frame = pd.DataFrame(rows, columns=[key, "status", "updated_at"])
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
        frame.to_parquet(folder / name)

    deliver(
        "2026-11-01.parquet", [("p2", "on_duty", "2026-11-01T02:00Z"), ("p1", "on_duty", "2026-11-01T02:00Z")]
    )
    deliver(
        "2026-11-02.parquet",
        [("p3", "on_duty", "2026-11-02T01:00Z"), ("p1", "off_duty", "2026-11-02T03:00Z")],
    )
    store = FeedStore(folder, feed)
    everything = store.window(None, None)
    assert list(everything[key]) == ["p2", "p3", "p1"]  # p1 once, as delivered on the 2nd
    assert list(everything["status"]) == ["on_duty", "on_duty", "off_duty"]
    first_day = store.window(pd.Timestamp("2026-10-31T16:00Z"), pd.Timestamp("2026-11-01T16:00Z"))
    assert list(first_day[key]) == ["p2"]
    deliver("2026-11-03.parquet", [("p2", "off_duty", "2026-11-03T00:30Z")])
    assert list(store.window(None, None)[key]) == ["p3", "p1", "p2"]
    since_the_2nd = store.window(pd.Timestamp("2026-11-02T00:00Z"), None)
    assert list(since_the_2nd[key]) == ["p3", "p1", "p2"]
    assert store.window(pd.Timestamp("2026-10-31T16:00Z"), pd.Timestamp("2026-11-01T16:00Z")).empty
