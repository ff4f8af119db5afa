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
MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


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
            table = pq.read_table(path)
            return table.rename_columns(_unique_names(table.column_names))
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


HEADER_SEARCH_ROWS = 10  # a title or a note above the header row: look this far down for the header


def _header_row(feed: Feed, rows: list[list[Any]]) -> int:
    """Which of the first rows is the header: the first naming at least half of the feed's columns
    (and two). Rows above it are a title or notes (a department's report layout); 0 when none does."""
    headers = {c.header for c in feed.columns}
    needed = max(2, (len(headers) + 1) // 2) if len(headers) > 1 else 1
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        names = {str(v).strip() for v in row if v is not None}
        if len(names & headers) >= needed:
            return index
    return 0


def _read_csv(feed: Feed, path: Path) -> pa.Table:
    data = path.read_bytes()
    encoding = feed.encoding
    if encoding.replace("-", "").lower() in ("gb18030", "gbk", "gb2312") and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # Chinese text in gb18030 is almost never valid utf-8: this file was saved as utf-8
            raise SourceError(
                f"feed {feed.name}: {path} is utf-8 text, not {encoding} (the catalog's declared encoding); "
                "ask the department for the file in the declared encoding, or correct the catalog's `encoding`"
            )
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"feed {feed.name}: {path} is not valid {encoding} (the catalog's declared encoding): "
            f"byte {exc.start} ({data[exc.start : exc.start + 4].hex(' ')}...) does not decode; "
            "ask the department for the file in the declared encoding, or correct the catalog's `encoding`"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark Excel puts before utf-8 text
    if not text.strip():
        raise SourceError(f"feed {feed.name}: {path} is empty (not even a header row)")
    first: list[list[str]] = []
    ends: list[int] = []  # the line each of the first records ends on
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a huge field is data, not a reason to fail
    try:
        reader = csv.reader(io.StringIO(text))
        for record in reader:
            first.append(record)
            ends.append(reader.line_num)
            if len(first) >= HEADER_SEARCH_ROWS:
                break
    except csv.Error as exc:
        if not first:
            raise SourceError(f"feed {feed.name}: {path} has no readable csv header row ({exc})") from None
    finally:
        csv.field_size_limit(limit)
    skip = _header_row(feed, first)
    if skip:  # drop the title lines above the header
        cut = 0
        for _ in range(ends[skip - 1]):
            cut = text.find("\n", cut) + 1
        text = text[cut:]
    header = first[skip]
    ragged: list = []

    def keep(row) -> str:
        ragged.append(row)
        return "skip"

    encoded = text.encode("utf-8")

    def parse(block_size: int) -> pa.Table:
        ragged.clear()
        return pa_csv.read_csv(
            io.BytesIO(encoded),
            read_options=pa_csv.ReadOptions(encoding="utf-8", block_size=block_size),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=[""],
                strings_can_be_null=True,
            ),
        )

    try:
        table = parse(1 << 20)
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        table = parse(len(encoded) + 1)  # a row longer than a block (a huge field): one block for all
    table = table.rename_columns(_unique_names(table.column_names))
    if ragged:  # never load a file with rows dropped: the whole file fails, naming the rows
        example = ragged[0]
        raise SourceError(
            f"feed {feed.name}: {path} has {len(ragged)} row(s) whose fields do not match the header's "
            f"{example.expected_columns} (an unbalanced quote or a stray delimiter); the first has "
            f"{example.actual_columns} field(s): {example.text[:120]!r}; ask the department to send it again"
        )
    return table


def _merged_ranges(sheet) -> list[tuple[int, int, int, int]]:
    """The sheet's merged cell ranges (min_col, min_row, max_col, max_row), from its XML (read-only
    worksheets do not expose them)."""
    from openpyxl.utils.cell import range_boundaries

    found: list[tuple[int, int, int, int]] = []
    source = sheet._get_source()
    try:
        tail = b""
        while chunk := source.read(1 << 20):
            block = tail + chunk
            found += [range_boundaries(ref.decode()) for ref in MERGE_CELL.findall(block)]
            cut = block.rfind(b"<")  # a tag cut by the chunk boundary is matched with the next chunk
            tail = block[cut:] if cut >= 0 and b">" not in block[cut:] else b""
    finally:
        source.close()
    return found


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
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        grid = [list(row) for row in worksheet.iter_rows(min_row=1, min_col=1, values_only=True)]
        merged = _merged_ranges(worksheet) if hasattr(worksheet, "_get_source") else []
    finally:
        workbook.close()
    for min_col, min_row, max_col, max_row in merged:  # a merged cell's value belongs to each of its cells
        if min_row > len(grid) or min_col > len(grid[min_row - 1]):
            continue
        value = grid[min_row - 1][min_col - 1]
        for r in range(min_row - 1, min(max_row, len(grid))):
            row = grid[r]
            row.extend([None] * (max_col - len(row)))
            for c in range(min_col - 1, max_col):
                row[c] = value
    rows = [row for row in grid if any(v is not None and v != "" for v in row)]
    if not rows:
        raise SourceError(f"feed {feed.name}: sheet {sheet!r} of {path} is empty (not even a header row)")
    start = _header_row(feed, rows)  # a title above the header (often merged across it) is skipped
    header, body = rows[start], rows[start + 1 :]
    width = max(len(r) for r in rows[start:])
    names: list[str] = []
    arrays: list[pa.Array] = []
    for i in range(width):
        name = header[i] if i < len(header) else None
        values = [r[i] if i < len(r) else None for r in body]
        if name is None or name == "":
            if all(v is None for v in values):
                continue  # a blank column Excel counts in the sheet's dimension
            name = f"column_{i + 1}"
        names.append(str(name))
        arrays.append(_array(values))
    return pa.table(arrays, names=_unique_names(names))


def _unique_names(names: list[str]) -> list[str]:
    """Headers made unique: a repeated header's later columns become ``<name>__2``, ``<name>__3``, ...
    (kept as extra columns, never overwriting the first)."""
    seen: dict[str, int] = {}
    taken = set(names)
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        n = seen[name]
        while True:
            n += 1
            candidate = f"{name}__{n}"
            if candidate not in taken:
                break
        seen[name] = n
        taken.add(candidate)
        out.append(candidate)
    return out


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
