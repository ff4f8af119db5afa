"""From a batch as delivered to typed records with the catalog's names.

Headers are mapped from the source's spelling (``source_name``) to the catalog's; a missing required
column fails the batch (a renamed column looks like this); an unknown extra column is reported and its
values are kept in ``_extra``. Each value is converted to its declared type; a value that does not
convert is a row defect (``type_mismatch``), never a silent null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from ..catalog import Column, Feed
from ..pii import hash_value, pii_salt

TRUE_WORDS = {"1", "true", "t", "yes", "y", "是"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "否"}
OFFSET = r"(?:[+-]\d{2}:?\d{2}|Z)$"


class SchemaError(ValueError):
    """The batch's columns do not match the catalog: a critical failure."""


@dataclass
class Parsed:
    frame: pd.DataFrame  # catalog columns, typed; plus _row (position in the batch) and _extra (JSON or null)
    type_errors: dict[int, list[str]] = field(default_factory=dict)  # row -> ["column: message"]
    extra_columns: list[str] = field(default_factory=list)


def _timestamps(values: pd.Series, zone: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    aware = text.str.contains(OFFSET, regex=True, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
    naive = ~aware & text.notna()
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return out


def _booleans(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    out[text.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    # A spreadsheet exports a 1/0 column that has an empty cell as numbers: "1.0", "0.0"
    out[text.str.fullmatch(r"1\.0+", na=False).astype(bool)] = True
    out[text.str.fullmatch(r"0\.0+", na=False).astype(bool)] = False
    return out


def _dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.date.astype(object)
    parsed = pd.to_datetime(values.astype("string").str.strip().str[:10], format="%Y-%m-%d", errors="coerce")
    return pd.Series([v.date() if pd.notna(v) else None for v in parsed], index=values.index, dtype=object)


def convert(col: Column, values: pd.Series, zone: str) -> pd.Series:
    """Values of one column in the column's declared type; what does not convert becomes null."""
    if col.type == "timestamp":
        return _timestamps(values, zone)
    if col.type == "date":
        return _dates(values)
    if col.type == "boolean":
        return _booleans(values)
    if col.type in ("integer", "float"):
        numbers = (
            pd.to_numeric(values, errors="coerce")
            if not pd.api.types.is_numeric_dtype(values.dtype)
            else values
        )
        numbers = numbers.astype("float64")
        if col.type == "integer":
            whole = numbers.isna() | (numbers == np.round(numbers))
            return numbers.where(whole).astype("Int64")
        return numbers
    text = values.astype("string").str.strip()
    # A NUL character fits no database's text column (Postgres refuses it): a defect, never stripped.
    return text.where((text != "") & ~text.str.contains("\x00", regex=False), pd.NA)


def parse_batch(feed: Feed, table: pa.Table) -> Parsed:
    """Map, check and type a delivered batch. Raises SchemaError when a required column is missing."""
    delivered = table.to_pandas(
        types_mapper={pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get
    )
    by_header = {c.header: c.name for c in feed.columns}
    renamed = {h: by_header.get(h, h) for h in delivered.columns}
    delivered = delivered.rename(columns=renamed)
    known = set(feed.column_names)
    extras = [c for c in delivered.columns if c not in known]
    missing = [c.name for c in feed.columns if c.name not in delivered.columns]
    if missing and (table.num_rows or extras):
        # A declared column absent from the delivery is a changed export, even when its values may be null.
        hint = f"; the batch has unknown column(s) {extras}: was one renamed?" if extras else ""
        raise SchemaError(
            f"column(s) {missing} missing{hint}. Update the catalog entry of {feed.name} "
            "if the department changed its export, or ask the department to restore the column."
        )
    frame = pd.DataFrame(index=delivered.index)
    errors: dict[int, list[str]] = {}
    salt: str | None = None  # read once, and only when a personal value fails to convert
    for col in feed.columns:
        if col.name not in delivered.columns:
            frame[col.name] = convert(
                col, pd.Series([None] * len(delivered), index=delivered.index, dtype="string"), feed.timezone
            )
            continue
        raw = delivered[col.name]
        typed = convert(col, raw, feed.timezone)
        present = raw.notna()
        if pd.api.types.is_string_dtype(raw.dtype) or raw.dtype == object:  # text: blank is absent too
            present &= (raw.astype("string").str.strip() != "").fillna(True)
        lost = np.flatnonzero((present & typed.isna()).to_numpy(dtype=bool, na_value=False))
        for row in lost:
            value = str(raw.iat[row])
            problem = (
                "contains a NUL character (\\x00), which a text column cannot hold"
                if col.type == "string"
                else f"is not a valid {col.type}"
            )
            # a personal value is quoted as its salted hash (what staging would have made of it), never in clear
            shown = hash_value(value, salt or (salt := pii_salt())) if col.pii else repr(value[:60])
            errors.setdefault(int(row), []).append(f"{col.name}: {shown} {problem}")
        frame[col.name] = typed
    frame["_row"] = np.arange(len(frame), dtype="int64")
    if extras:
        values = delivered[extras].astype(object).where(delivered[extras].notna(), None)
        frame["_extra"] = [
            storable_json(dict(zip(extras, map(_jsonable, row), strict=True)))
            for row in values.itertuples(index=False)
        ]
    else:
        frame["_extra"] = pd.Series([None] * len(frame), dtype="string")
    return Parsed(frame.reset_index(drop=True), errors, extras)


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(v) for v in value]
    return value


def storable_json(value) -> str:
    """``value`` as JSON text every warehouse's JSON column accepts: Postgres' jsonb refuses the NUL
    character, so a NUL inside a string is written as the visible text ``\\u0000`` (the raw lake keeps
    the value as delivered)."""
    return json.dumps(_without_nul(value), ensure_ascii=False, default=str)


def _jsonable(value):
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):  # a list column of a parquet file
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)
