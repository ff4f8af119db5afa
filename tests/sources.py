"""Test helpers: read back what the simulator delivered, the way each source holds it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from emergency_dw.catalog import Feed
from emergency_dw.config import LOCAL_TZ
from emergency_dw.simulator.run import source_db_url
from emergency_dw.simulator.writers import drop_dir


def delivered(sources: Path, feed: Feed, day: dt.date) -> pd.DataFrame:
    """A feed's delivery for ``day`` with catalog column names, in delivery order; times in UTC."""
    kind = feed.connector_kind
    if kind == "http_json":
        frame = pd.read_parquet(sources / "http" / feed.name / f"{day.isoformat()}.parquet")
    elif kind == "sql":
        engine = sa.create_engine(source_db_url(sources))
        table = feed.connector.table
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text(f"select * from {table} order by rowid"), conn)  # noqa: S608 - catalog name
        engine.dispose()
        for col in feed.columns:
            if col.type == "timestamp":
                frame[col.name] = (
                    pd.to_datetime(frame[col.name]).dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC")
                )
        if not feed.snapshot:
            start = pd.Timestamp(dt.datetime.combine(day, dt.time()), tz=LOCAL_TZ)
            in_day = (frame["updated_at"] >= start) & (frame["updated_at"] < start + pd.Timedelta(days=1))
            frame = frame[in_day].reset_index(drop=True)
    else:
        frames = []
        for path in sorted(drop_dir(sources, feed).glob(feed.connector.pattern)):
            if feed.connector.format == "csv":
                frames.append(pd.read_csv(path, encoding=feed.encoding, dtype=str, keep_default_na=True))
            elif feed.connector.format == "xlsx":
                frames.append(pd.read_excel(path, sheet_name=feed.connector.sheet, dtype=object))
            else:
                frames.append(pd.read_parquet(path))
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.rename(columns={c.header: c.name for c in feed.columns})
        for col in feed.columns:
            if col.name not in frame.columns:
                continue
            if col.type == "timestamp":
                values = pd.to_datetime(frame[col.name])
                frame[col.name] = (
                    values.dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC") if values.dt.tz is None else values
                )
            elif col.type in ("float", "integer"):
                frame[col.name] = pd.to_numeric(frame[col.name])
    return frame


def violations(
    feed: Feed, frame: pd.DataFrame, allowed_extra: dict[str, set] | None = None
) -> set[tuple[int, str]]:
    """(row, defect) for every row that breaks a catalog rule."""
    found: set[tuple[int, str]] = set()
    for col in feed.columns:
        if col.name not in frame.columns:
            continue
        values = frame[col.name]
        if not col.nullable and col.name not in feed.primary_key:
            found |= {(int(r), "null_required") for r in np.flatnonzero(values.isna().to_numpy())}
        if col.type in ("float", "integer") and (col.min is not None or col.max is not None):
            numbers = pd.to_numeric(values)
            bad = (numbers < (col.min if col.min is not None else -np.inf)) | (
                numbers > (col.max if col.max is not None else np.inf)
            )
            found |= {(int(r), "out_of_range") for r in np.flatnonzero(bad.fillna(False).to_numpy())}
        if col.allowed:
            text = values.astype(object).where(values.notna(), None)
            bad = np.array([v is not None and str(v) not in col.allowed for v in text])
            found |= {(int(r), "unknown_code") for r in np.flatnonzero(bad)}
    for earlier, later in feed.time_order:
        a, b = pd.to_datetime(frame[earlier], utc=True), pd.to_datetime(frame[later], utc=True)
        found |= {(int(r), "reversed_timestamps") for r in np.flatnonzero((b < a).fillna(False).to_numpy())}
    keys = frame[list(feed.primary_key)].astype(str).agg("|".join, axis=1)
    found |= {(int(r), "duplicate_key") for r in np.flatnonzero(keys.duplicated(keep=False).to_numpy())}
    return found
