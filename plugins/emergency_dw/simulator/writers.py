"""Put a day's delivery where its real source would hold it: the API's store, a database, a drop folder."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from ..catalog import Feed
from ..catalog.references import TOWNS
from ..config import LOCAL_TZ
from .common import day_start_utc

SQL_TYPES = {
    "string": sa.Text,
    "integer": sa.BigInteger,
    "float": sa.Float,
    "boolean": sa.Boolean,
    "date": sa.Date,
    "timestamp": sa.DateTime,
}
TOWN_NAME = {t.code: t.name_zh for t in TOWNS}
FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
CORE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*)>[^<]*<")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def local_naive(series: pd.Series) -> pd.Series:
    """UTC timestamps as the wall-clock time of Asia/Shanghai, without an offset (how clerks export them)."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)


# ---------------------------------------------------------------- HTTP API store
def http_store_path(sources_dir: Path, feed: Feed, day: dt.date) -> Path:
    return sources_dir / "http" / feed.name / f"{day.isoformat()}.parquet"


def write_http(sources_dir: Path, feed: Feed, day: dt.date, frame: pd.DataFrame) -> list[Path]:
    path = http_store_path(sources_dir, feed, day)
    atomic_write_bytes(path, parquet_bytes(frame))
    return [path]


# ---------------------------------------------------------------- source database
def sql_table(feed: Feed, metadata: sa.MetaData) -> sa.Table:
    table = feed.connector.table  # type: ignore[union-attr]
    columns = [sa.Column(c.name, SQL_TYPES[c.type]()) for c in feed.columns]
    index = sa.Index(f"ix_{table}_updated_at", "updated_at")
    return sa.Table(table, metadata, *columns, index)


def _sql_records(feed: Feed, frame: pd.DataFrame) -> list[dict]:
    out = frame.copy()
    for col in feed.columns:
        if col.type == "timestamp":
            out[col.name] = local_naive(out[col.name]).astype(object).where(out[col.name].notna(), None)
        elif col.type in ("integer", "float", "boolean", "string", "date"):
            out[col.name] = out[col.name].astype(object).where(out[col.name].notna(), None)
    records = out.to_dict("records")
    for record in records:
        for col in feed.columns:
            value = record[col.name]
            if isinstance(value, pd.Timestamp):
                record[col.name] = value.to_pydatetime()
            elif isinstance(value, np.generic):
                record[col.name] = value.item()
    return records


def write_sql(engine: sa.Engine, feed: Feed, day: dt.date, frame: pd.DataFrame) -> list[Path]:
    """Snapshots replace the table (the system holds current state); events replace the day's rows and
    any earlier version of a record delivered again (an update)."""
    metadata = sa.MetaData()
    table = sql_table(feed, metadata)
    metadata.create_all(engine)
    records = _sql_records(feed, frame)
    with engine.begin() as conn:
        if feed.snapshot:
            conn.execute(table.delete())
        else:
            start = local_naive(pd.Series([day_start_utc(day)])).iloc[0].to_pydatetime()
            end = start + dt.timedelta(days=1)
            conn.execute(table.delete().where(table.c.updated_at >= start, table.c.updated_at < end))
            if len(feed.primary_key) == 1:
                key = feed.primary_key[0]
                values = sorted({r[key] for r in records if r[key] is not None})
                for i in range(0, len(values), 500):
                    conn.execute(table.delete().where(table.c[key].in_(values[i : i + 500])))
        for i in range(0, len(records), 20_000):
            conn.execute(table.insert(), records[i : i + 20_000])
    return []


# ---------------------------------------------------------------- drop folders
def drop_dir(sources_dir: Path, feed: Feed) -> Path:
    return sources_dir / "drop" / feed.connector.folder / "incoming"  # type: ignore[union-attr]


def _file_frame(feed: Feed, frame: pd.DataFrame, text_times: bool) -> pd.DataFrame:
    out = frame.copy()
    for col in feed.columns:
        if col.name not in out.columns:
            continue
        if col.type == "timestamp" and text_times:
            out[col.name] = local_naive(out[col.name]).dt.strftime("%Y-%m-%d %H:%M:%S")
        elif col.type == "boolean":
            # 1/0, and an empty cell where a value is missing (not 1.0/0.0, as a float column would give)
            out[col.name] = out[col.name].astype("boolean").astype("Int64")
        elif col.type == "date":
            out[col.name] = out[col.name].map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    return out.rename(columns={c.name: c.header for c in feed.columns})


def _xlsx_bytes(frame: pd.DataFrame, sheet: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append(
            [None if (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is None else v for v in row]
        )
    wb.properties.created = wb.properties.modified = dt.datetime(2020, 1, 1)
    sink = io.BytesIO()
    wb.save(sink)
    return _normalise_zip(sink.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip (xlsx) with fixed entry times so the same content gives the same bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = CORE_TIMES.sub(rb"\1>2020-01-01T00:00:00Z<", content)
            out.writestr(entry, content)
    return sink.getvalue()


def file_name(feed: Feed, day: dt.date, prefix: str = "") -> str:
    pattern = feed.connector.pattern  # type: ignore[union-attr]
    name = (
        pattern.replace("*", f"{day:%Y%m%d}", 1)
        if not prefix
        else pattern.replace("*", prefix, 1).replace("*", f"{day:%Y%m%d}", 1)
    )
    return name


def write_drop(sources_dir: Path, feed: Feed, day: dt.date, frame: pd.DataFrame) -> list[Path]:
    connector = feed.connector
    folder = drop_dir(sources_dir, feed)
    if connector.per_town:  # type: ignore[union-attr]
        groups = [(TOWN_NAME.get(code, code), part) for code, part in frame.groupby("town_code", sort=True)]
    else:
        groups = [("", frame)]
    written = []
    for prefix, part in groups:
        path = folder / file_name(feed, day, prefix)
        if connector.format == "parquet":
            data = parquet_bytes(_file_frame(feed, part, text_times=False))
        elif connector.format == "csv":
            text = _file_frame(feed, part, text_times=True).to_csv(index=False, lineterminator="\r\n")
            data = text.encode(feed.encoding)
        else:
            data = _xlsx_bytes(
                _file_frame(feed, part, text_times=False).pipe(_naive_times, feed),
                connector.sheet or "Sheet1",
            )
        atomic_write_bytes(path, data)
        written.append(path)
    return written


def _naive_times(frame: pd.DataFrame, feed: Feed) -> pd.DataFrame:
    """Excel has no time zones: local wall-clock datetimes."""
    out = frame.copy()
    for col in feed.columns:
        if col.type == "timestamp" and col.header in out.columns:
            out[col.header] = local_naive(out[col.header]).astype(object).where(out[col.header].notna(), None)
    return out
