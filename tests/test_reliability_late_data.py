"""Late-arriving data, on Postgres: calls received on day D that the departments deliver only with D+1's
batch are landed in D+1's lake partition (the lake keeps batches as delivered: `dt=` is the batch's
interval), loaded into raw with D+1's batch id and their own received_at, and the incremental dbt build
after D+1 puts them on day D in the marts: fct_incident_response gains them with received_date D and
agg_response_times_daily's counts for D go up by as many; a unit's late dispatch record updates its
incident's intervals, and D's other incidents are untouched.

The simulator delivers a share of each event feed's records a day late (scenario `late_rate`, raised
here so a small day carries some) and writes which ones in its ground truth."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from emergency_dw.embedded import embedded_sources
from emergency_dw.pipeline.ingest import day_interval, ingest
from emergency_dw.simulator.run import Simulator, truth_dir
from emergency_dw.simulator.scenario import DEFAULT_SCENARIO, load_scenario
from emergency_dw.transform import run_dbt
from emergency_dw.warehouse import connect

from conftest import RELIABILITY
from reliability import create_database, drop_database, postgres_url

pytestmark = pytest.mark.timeout(300)

SCALE = 0.01
DAY = dt.date(2026, 11, 23)
NEXT = DAY + dt.timedelta(days=1)
ALERTS = ["alerts_110", "alerts_119", "alerts_120"]
FEEDS = [*ALERTS, "dispatch_records"]
SELECTION = ["build", "--select", "+fct_incident_response +agg_response_times_daily"]
SELECTION += ["--indirect-selection", "buildable"]


def _frame(url: str, sql: str, params: list | None = None) -> pd.DataFrame:
    warehouse = connect(url)
    try:
        return warehouse.query(sql, params or []).to_pandas()
    finally:
        warehouse.close()


def _marts_for(url: str, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    incidents = _frame(
        url,
        "select incident_id, channel, received_at, received_date, response_seconds "
        "from marts.fct_incident_response where received_date = ? order by incident_id",
        [day],
    )
    daily = _frame(
        url,
        "select channel, cast(sum(incident_count) as bigint) as incidents from marts.agg_response_times_daily "
        "where received_date = ? group by channel order by channel",
        [day],
    )
    return incidents, daily.set_index("channel")["incidents"]


def _build(url: str) -> None:
    run = run_dbt(SELECTION, warehouse_url=url)
    failed = run.failed
    assert run.success and not failed, (run.error, failed[:5])


@pytest.mark.postgres
@pytest.mark.slow
def test_a_late_call_lands_in_its_delivery_partition_and_updates_its_days_marts(tmp_path: Path):
    scenario_file = tmp_path / "late.toml"
    text = DEFAULT_SCENARIO.read_text(encoding="utf-8")
    scenario_file.write_text(re.sub(r"(?m)^late_rate = [0-9.]+", "late_rate = 0.3", text), encoding="utf-8")
    root = tmp_path / "data"
    simulator = Simulator(root / "sources", scale=SCALE, scenario=load_scenario(scenario_file))
    database = create_database("edw_test_late")
    url = postgres_url(database)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDW_DATA_DIR", str(root))
            mp.setenv("EDW_WAREHOUSE_URL", url)
            mp.setenv("EDW_HTTP_BACKOFF_SECONDS", "0.05")
            # day D as `edw run` does it: simulate the day, ingest every feed, build
            simulator.simulate_day(DAY, feeds=FEEDS)
            with embedded_sources():
                for feed in FEEDS:
                    ingest(feed, *day_interval(DAY))
            _build(url)
            before, before_daily = _marts_for(url, DAY)
            assert len(before) and before_daily.sum() == len(before)

            # day D+1: its batch also carries calls of day D that arrive late
            simulator.simulate_day(NEXT, feeds=FEEDS)
            truth = pd.read_parquet(truth_dir(root / "sources", NEXT) / "defects.parquet")
            late = truth[(truth["defect"] == "late_arriving") & truth["feed"].isin(ALERTS)]
            assert len(late) >= 2, "the scenario delivers some of D's calls with D+1's batch"
            with embedded_sources():
                for feed in FEEDS:
                    ingest(feed, *day_interval(NEXT))

            late_ids = set(late["record_key"])
            for feed, keys in late.groupby("feed")["record_key"]:
                # the lake keeps the batch as delivered: D+1's partition holds the late call
                partition = root / "lake" / "raw" / feed / f"dt={NEXT}"
                landed = pq.read_table(next(partition.glob("*.parquet"))).to_pandas()
                assert set(keys) <= set(landed["incident_id"]), feed
                assert (
                    not (root / "lake" / "raw" / feed / f"dt={DAY}")
                    .joinpath(f"{feed}__{NEXT}.parquet")
                    .exists()
                )
                # raw: loaded with D+1's batch, dated by its own received_at (day D, local time)
                raw = _frame(
                    url,
                    f"select incident_id, received_at, _batch_id from raw.\"{feed}\" where incident_id = any(string_to_array(?, ','))",
                    [",".join(keys)],
                )
                assert set(raw["incident_id"]) == set(keys), f"{feed}: a late call was not loaded"
                assert set(raw["_batch_id"]) == {f"{feed}:{NEXT}"}
                local_days = set(
                    pd.to_datetime(raw["received_at"], utc=True).dt.tz_convert("Asia/Shanghai").dt.date
                )
                assert local_days == {DAY}, f"{feed}: the late calls were received on {DAY}"

            _build(url)  # incremental: rebuilds the dates of the calls and dispatch records loaded since
        after, after_daily = _marts_for(url, DAY)
        arrived = after[after["incident_id"].isin(late_ids)]
        assert set(arrived["incident_id"]) == late_ids, "every late call is in fct_incident_response"
        assert set(arrived["received_date"].astype(str)) == {DAY.isoformat()}
        assert len(after) == len(before) + len(late_ids)
        kept = after[~after["incident_id"].isin(late_ids)].reset_index(drop=True)
        identity = ["incident_id", "channel", "received_at", "received_date"]
        pd.testing.assert_frame_equal(
            kept[identity], before[identity].reset_index(drop=True), check_dtype=False
        )
        # a unit's dispatch record that came late updates its incident's intervals, and nothing else does
        changed = set(
            kept.loc[
                ~kept["response_seconds"].fillna(-1).eq(before["response_seconds"].fillna(-1).values),
                "incident_id",
            ]
        )
        late_dispatch = truth[(truth["defect"] == "late_arriving") & (truth["feed"] == "dispatch_records")]
        late_dispatch_incidents = {key.split("|")[0] for key in late_dispatch["record_key"]}
        assert changed <= late_dispatch_incidents, changed - late_dispatch_incidents
        late_by_channel = (
            after[after["incident_id"].isin(late_ids)].groupby("channel").size().rename("incidents")
        )
        expected = before_daily.add(late_by_channel, fill_value=0).astype(int)
        pd.testing.assert_series_equal(after_daily.astype(int), expected, check_names=False)
        next_incidents, _ = _marts_for(url, NEXT)
        assert len(next_incidents) and not set(next_incidents["incident_id"]) & late_ids
        RELIABILITY["late calls moved onto their own day in the marts"] += len(late_ids)
        RELIABILITY["incidents updated by late dispatch records"] += len(changed)
    finally:
        drop_database(database)
        shutil.rmtree(root, ignore_errors=True)
