"""Files a department drops into ``<root>/<folder>/incoming/``: csv (declared encoding), xlsx, parquet.

Headers are kept as the source spells them (the pipeline maps ``source_name`` -> name); csv cells are
text (empty cells null), xlsx cells as Excel typed them, parquet as written. Files stay in
``incoming/`` until the pipeline has loaded their batch and calls :func:`mark_processed`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..catalog import Feed
from .base import Extract, SourceError

DATE_STAMP = re.compile(r"(?<!\d)(\d{8})(?!\d)")


def incoming_dir(feed: Feed, root: Path) -> Path:
    return Path(root) / feed.connector.folder / "incoming"  # type: ignore[union-attr]


def pending_files(feed: Feed, root: Path) -> list[Path]:
    """Files waiting in the feed's ``incoming/`` folder that match its pattern, sorted by name."""
    _check_kind(feed)
    if not Path(root).is_dir():
        raise SourceError(f"feed {feed.name}: the landing root {root} does not exist; check EDW_DROP_ROOT")
    folder = incoming_dir(feed, root)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.glob(feed.connector.pattern)  # type: ignore[union-attr]
        if p.is_file() and not p.name.startswith(".")  # skip half-written hidden temp files
    )


def file_date(path: Path) -> dt.date | None:
    """The YYYYMMDD date stamp in a file's name (the last one), or None."""
    for text in reversed(DATE_STAMP.findall(path.name)):
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            continue
    return None


def processed_files(feed: Feed, root: Path) -> list[Path]:
    """Files of the feed already loaded (moved to ``processed/``), sorted by name."""
    folder = incoming_dir(feed, root).parent / "processed"
    if not folder.is_dir():
        return []
    pattern = feed.connector.pattern  # type: ignore[union-attr]
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def extract_files(feed: Feed, start: dt.datetime | None, end: dt.datetime | None, root: Path) -> Extract:
    """The files stamped with a local day the interval touches, concatenated; columns a file lacks are
    null. Files already processed for those days are read again (a rerun of the batch gives the same
    batch); with ``start`` None, every pending file."""
    _check_kind(feed)
    files = pending_files(feed, root)
    if start is not None:
        waiting = {p.name for p in files}
        files = sorted(
            [*files, *(p for p in processed_files(feed, root) if p.name not in waiting)], key=lambda p: p.name
        )
        days = _local_days(feed, start, end)
        chosen = []
        for path in files:
            stamp = file_date(path)
            if stamp is None:
                raise SourceError(
                    f"feed {feed.name}: {path} has no YYYYMMDD date stamp in its name, so its day is "
                    "unknown; rename it with its delivery date or move it out of incoming/"
                )
            if days[0] <= stamp <= days[1]:
                chosen.append(path)
        files = chosen
    tables = [read_file(feed, path) for path in files]
    if tables:
        table = _concat(tables)
    else:
        table = pa.table({c.header: pa.array([], pa.string()) for c in feed.columns})
    return Extract(
        feed=feed.name,
        table=table,
        # where the files came from, the same before and after they move to processed/ (reruns agree)
        source=", ".join(f"{feed.connector.folder}/{p.name}" for p in files) or str(incoming_dir(feed, root)),  # type: ignore[union-attr]
        interval_start=start,  # type: ignore[arg-type]
        interval_end=end,  # type: ignore[arg-type]
        files=files,
    )


def read_file(feed: Feed, path: Path) -> pa.Table:
    """One dropped file as delivered (headers as the source spells them)."""
    _check_kind(feed)
    path = Path(path)
    fmt = feed.connector.format  # type: ignore[union-attr]
    try:
        if fmt == "csv":
            return _read_csv(feed, path)
        if fmt == "xlsx":
            return _read_xlsx(feed, path)
        if fmt == "parquet":
            return pq.read_table(path)
    except SourceError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, pa.ArrowException) as exc:
        raise SourceError(
            f"feed {feed.name}: cannot read {path} as {fmt} ({type(exc).__name__}: {exc}); "
            "the file is damaged or not what the catalog declares; ask the department to send it again"
        ) from exc
    raise ValueError(f"feed {feed.name}: unknown file format {fmt!r}")


def mark_processed(paths: list[Path], root: Path) -> list[Path]:
    """Move each loaded file from ``incoming/`` to the sibling ``processed/`` folder (atomic rename).

    Call only after the batch the files made is loaded. A file already moved is skipped (a re-run);
    a processed file of the same name is kept by giving the newcomer a ``__N`` suffix.
    """
    root = Path(root).resolve()
    moved = []
    for path in paths:
        path = Path(path)
        if path.parent.name == "processed" and path.resolve().is_relative_to(root):
            continue  # read again by a rerun; already where it belongs
        if path.parent.name != "incoming" or not path.resolve().is_relative_to(root):
            raise ValueError(f"{path} is not in an incoming/ folder under {root}; not moving it")
        target_dir = path.parent.parent / "processed"
        target = target_dir / path.name
        if not path.exists():
            if target.exists():
                continue
            raise FileNotFoundError(f"{path} is gone from incoming/ and not in processed/ either")
        target_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while target.exists():
            n += 1
            target = target_dir / f"{path.stem}__{n}{path.suffix}"
        os.replace(path, target)
        moved.append(target)
    return moved


def _read_csv(feed: Feed, path: Path) -> pa.Table:
    data = path.read_bytes()
    try:
        text = data.decode(feed.encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"feed {feed.name}: {path} is not valid {feed.encoding} (the catalog's declared encoding): "
            f"byte {exc.start} ({data[exc.start : exc.start + 4].hex(' ')}...) does not decode; "
            "ask the department for the file in the declared encoding, or correct the catalog's `encoding`"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark Excel puts before utf-8 text
    if not text.strip():
        raise SourceError(f"feed {feed.name}: {path} is empty (not even a header row)")
    header = next(csv.reader(io.StringIO(text)))
    return pa_csv.read_csv(
        io.BytesIO(text.encode("utf-8")),
        read_options=pa_csv.ReadOptions(encoding="utf-8"),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _read_xlsx(feed: Feed, path: Path) -> pa.Table:
    from openpyxl import load_workbook

    sheet = feed.connector.sheet  # type: ignore[union-attr]
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SourceError(
                f"feed {feed.name}: {path} has no sheet {sheet!r} (it has {', '.join(workbook.sheetnames)}); "
                "ask the department to keep the agreed sheet name, or correct the catalog's `sheet`"
            )
        rows = [
            row
            for row in (workbook[sheet] if sheet else workbook.worksheets[0]).iter_rows(values_only=True)
            if any(v is not None and v != "" for v in row)
        ]
    finally:
        workbook.close()
    if not rows:
        raise SourceError(f"feed {feed.name}: sheet {sheet!r} of {path} is empty (not even a header row)")
    header, body = rows[0], rows[1:]
    width = max(len(r) for r in rows)
    columns: dict[str, pa.Array] = {}
    for i in range(width):
        name = header[i] if i < len(header) else None
        values = [r[i] if i < len(r) else None for r in body]
        if name is None or name == "":
            if all(v is None for v in values):
                continue  # a blank column Excel counts in the sheet's dimension
            name = f"column_{i + 1}"
        columns[str(name)] = _array(values)
    return pa.table(columns)


def _array(values: list[Any]) -> pa.Array:
    """Arrow's inferred type, or text when a column mixes kinds (a number where text was, ...)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Union of the files' columns (missing ones null); a column typed differently by two files is text."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for f in table.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    clashing = {name for name, kinds in types.items() if len(kinds) > 1}
    recast = []
    for table in tables:
        for name in clashing & set(table.column_names):
            i = table.column_names.index(name)
            column = pa.array(
                [None if v is None else _text(v) for v in table.column(i).to_pylist()], pa.string()
            )
            table = table.set_column(i, name, column)
        recast.append(table)
    return pa.concat_tables(recast, promote_options="permissive")


def _local_days(feed: Feed, start: dt.datetime, end: dt.datetime | None) -> tuple[dt.date, dt.date]:
    """First and last local day the interval touches (the end instant itself belongs to no day)."""
    zone = ZoneInfo(feed.timezone)
    for name, value in (("start", start), ("end", end)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"interval {name} {value!r} has no time zone; pass an aware datetime")
    first = start.astimezone(zone).date()
    last = dt.date.max if end is None else (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    return first, max(first, last)


def _check_kind(feed: Feed) -> None:
    if feed.connector_kind != "file_drop":
        raise ValueError(f"feed {feed.name} is a {feed.connector_kind} feed, not file_drop")
