"""Simulate days of every source: generate, delay late rows, inject defects, write, record the truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..catalog import Feed, all_feeds, get_feed
from .common import day_start_utc, rng_for
from .defects import TRUTH_COLUMNS, inject_defects, record_keys
from .generators import DayOutput, SimContext, generate_day
from .power_day import DATA_QUALITY_COLUMNS, NEAR_MISS_COLUMNS
from .scenario import Scenario, load_scenario
from .world import World
from .writers import atomic_write_bytes, parquet_bytes, write_drop, write_http, write_sql

ANOMALY_COLUMNS = [
    "anomaly_id",
    "rule",
    "feed",
    "enterprise_id",
    "subject_id",
    "started_at",
    "ended_at",
    "intervals",
    "peak_value",
    "threshold",
    "unit",
]


@dataclass
class FeedDay:
    feed: str
    day: dt.date
    rows: int
    defects: int
    late_rows: int
    anomalies: int
    files: list[Path] = field(default_factory=list)
    near_misses: int = 0
    data_problems: int = 0
    seconds: float = 0.0


def source_db_url(sources_dir: Path, url: str | None = None) -> str:
    """The simulated departments' database (SQLite beside the other sources unless told otherwise)."""
    return url or f"sqlite:///{sources_dir / 'sql' / 'sources.sqlite'}"


def truth_dir(sources_dir: Path, day: dt.date) -> Path:
    return sources_dir / "truth" / day.isoformat()


class Simulator:
    def __init__(
        self,
        sources_dir: Path,
        scale: float = 1.0,
        seed: int | None = None,
        scenario: Scenario | None = None,
        db_url: str | None = None,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"--scale must be above 0 (1 is full scale), got {scale}")
        self.scenario = scenario or load_scenario(seed=seed)
        self.seed = self.scenario.seed if seed is None else seed
        self.scale = scale
        self.sources_dir = sources_dir
        self.ctx = SimContext(self.seed, scale, self.scenario, World(self.seed, scale, self.scenario))
        self.db_url = source_db_url(sources_dir, db_url)
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            if self.db_url.startswith("sqlite:///"):
                Path(self.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(self.db_url)
        return self._engine

    def _late_mask(self, feed: Feed, day: dt.date, out: DayOutput) -> np.ndarray:
        n = len(out.frame)
        rate = float(self.scenario.defects["late_rate"])
        if feed.snapshot or rate <= 0 or n == 0:
            return np.zeros(n, dtype=bool)
        rng = rng_for(self.seed, feed.name, day.isoformat(), "late")
        late = rng.random(n) < rate
        if out.protected is not None:
            late &= ~out.protected.astype(bool)
        return late

    def delivery(self, feed: Feed, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, DayOutput, np.ndarray]:
        """What the source delivers for ``day``: the day's records less those that come late, plus the
        previous day's late records; with the late rows' truth, the day's output (its anomalies, near
        misses and data problems) and the protected rows."""
        today = generate_day(self.ctx, feed.name, day)
        late_today = self._late_mask(feed, day, today)
        frame = today.frame[~late_today]
        protected = (
            today.protected[~late_today] if today.protected is not None else np.zeros(len(frame), bool)
        )
        late_truth = pd.DataFrame(columns=TRUTH_COLUMNS)
        if not feed.snapshot and self.scenario.defects["late_rate"] > 0:
            previous_day = day - dt.timedelta(days=1)
            previous = generate_day(self.ctx, feed.name, previous_day)
            late = previous.frame[self._late_mask(feed, previous_day, previous)].copy()
            if len(late):
                rng = rng_for(self.seed, feed.name, day.isoformat(), "late-arrival")
                late["updated_at"] = day_start_utc(day) + pd.to_timedelta(
                    np.sort(rng.integers(3600, 36_000, len(late))), unit="s"
                )
                late_truth = pd.DataFrame(
                    {
                        "feed": feed.name,
                        "delivery_date": day.isoformat(),
                        "record_key": record_keys(feed, late),
                        "row_number": np.arange(len(frame), len(frame) + len(late)),
                        "defect": "late_arriving",
                        "column": feed.event_time,
                        "detail": f"record of {previous_day} delivered on {day}",
                    }
                )
                frame = pd.concat([frame, late], ignore_index=True)
                protected = np.concatenate([protected, np.ones(len(late), dtype=bool)])
        return frame.reset_index(drop=True), late_truth, today, protected

    def simulate_feed(self, feed: Feed, day: dt.date) -> tuple[FeedDay, pd.DataFrame, DayOutput]:
        started = time.perf_counter()
        frame, late_truth, today, protected = self.delivery(feed, day)
        rng = rng_for(self.seed, feed.name, day.isoformat(), "defects")
        frame, defects = inject_defects(
            feed,
            frame,
            day.isoformat(),
            rng,
            rate=float(self.scenario.defects["row_rate"]),
            max_per_type=int(self.scenario.defects["max_per_type"]),
            protected=protected,
        )
        if len(late_truth):
            # late rows sit at the end of the delivery; duplicates inserted before them moved them down
            late_truth["row_number"] = late_truth["row_number"] + (len(frame) - len(protected))
        truth = pd.concat([defects, late_truth], ignore_index=True) if len(late_truth) else defects
        for drift in self.scenario.defects.get("schema_drift", []):
            if drift["feed"] == feed.name and day.day in drift["days_of_month"]:
                frame = frame.rename(columns={drift["column"]: drift["renamed_to"]})
                batch_row = pd.DataFrame(
                    [
                        [
                            feed.name,
                            day.isoformat(),
                            None,
                            -1,
                            "renamed_column",
                            drift["column"],
                            f"delivered as {drift['renamed_to']!r}",
                        ]
                    ],
                    columns=TRUTH_COLUMNS,
                )
                truth = pd.concat([truth, batch_row], ignore_index=True)
        kind = feed.connector_kind
        if kind == "http_json":
            files = write_http(self.sources_dir, feed, day, frame)
        elif kind == "sql":
            files = write_sql(self.engine, feed, day, frame)
        else:
            files = write_drop(self.sources_dir, feed, day, frame)
        result = FeedDay(
            feed=feed.name,
            day=day,
            rows=len(frame),
            defects=int((truth["defect"] != "late_arriving").sum()),
            late_rows=int((truth["defect"] == "late_arriving").sum()),
            anomalies=len(today.anomalies),
            files=files,
            seconds=time.perf_counter() - started,
            near_misses=len(today.near_misses),
            data_problems=len(today.data_quality),
        )
        return result, truth, today

    def simulate_day(self, day: dt.date, feeds: list[str] | None = None, on_feed=None) -> list[FeedDay]:
        selected = [get_feed(name) for name in feeds] if feeds else list(all_feeds())
        results, truths, outputs = [], [], []
        for feed in selected:
            result, truth, today = self.simulate_feed(feed, day)
            results.append(result)
            truths.append(truth)
            outputs.append(today)
            if on_feed:
                on_feed(result)
        self._write_truth(day, results, truths, outputs)
        return results

    def _write_truth(
        self, day: dt.date, results: list[FeedDay], truths: list[pd.DataFrame], outputs: list[DayOutput]
    ) -> None:
        folder = truth_dir(self.sources_dir, day)
        defects = (
            pd.concat([t for t in truths if len(t)], ignore_index=True)
            if any(len(t) for t in truths)
            else pd.DataFrame(columns=TRUTH_COLUMNS)
        )
        defects["row_number"] = defects["row_number"].astype("int64")
        atomic_write_bytes(folder / "defects.parquet", parquet_bytes(defects))
        for name, records, columns in (
            ("anomalies", [a for out in outputs for a in out.anomalies], ANOMALY_COLUMNS),
            ("near_misses", [m for out in outputs for m in out.near_misses], NEAR_MISS_COLUMNS),
            ("data_quality", [q for out in outputs for q in out.data_quality], DATA_QUALITY_COLUMNS),
        ):
            frame = pd.DataFrame(records, columns=columns)
            for col in ("started_at", "ended_at"):
                frame[col] = pd.to_datetime(frame[col], utc=True)
            atomic_write_bytes(folder / f"{name}.parquet", parquet_bytes(frame))
        manifest = {
            "date": day.isoformat(),
            "seed": self.seed,
            "scale": self.scale,
            "scenario": str(self.scenario.source.name),
            "feeds": {
                r.feed: {
                    "rows": r.rows,
                    "defects": r.defects,
                    "late_rows": r.late_rows,
                    "anomalies": r.anomalies,
                    "near_misses": r.near_misses,
                    "data_problems": r.data_problems,
                    "files": [str(p.relative_to(self.sources_dir)) for p in r.files],
                    "sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in r.files],
                }
                for r in results
            },
        }
        atomic_write_bytes(
            folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        )


def days_from(start: dt.date, count: int) -> list[dt.date]:
    if count < 1:
        raise ValueError(f"--days must be at least 1, got {count}")
    return [start + dt.timedelta(days=k) for k in range(count)]
