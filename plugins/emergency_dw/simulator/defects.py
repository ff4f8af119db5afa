"""Realistic defects put into a day's delivery at known positions, with their ground truth.

Row-level defects: a required value missing, a duplicated key with conflicting values, a value out of
its declared range, a code outside its reference list, timestamps in the wrong order. Every defective
row is listed in the truth with its key, its position in the delivery, the defect and the column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalog import Feed

ROW_DEFECTS = ("null_required", "duplicate_key", "out_of_range", "unknown_code", "reversed_timestamps")
TRUTH_COLUMNS = ["feed", "delivery_date", "record_key", "row_number", "defect", "column", "detail"]


def record_keys(feed: Feed, frame: pd.DataFrame) -> list[str]:
    """A record's primary key as one string (values joined by ``|``)."""
    parts = [frame[k].astype(str).to_numpy() for k in feed.primary_key]
    return ["|".join(values) for values in zip(*parts, strict=True)]


def _candidates(feed: Feed) -> dict[str, list]:
    protected = set(feed.primary_key) | {feed.incremental_field, feed.event_time}
    return {
        "null_required": [c for c in feed.columns if not c.nullable and c.name not in protected],
        "out_of_range": [
            c
            for c in feed.columns
            if c.type in ("integer", "float") and (c.min is not None or c.max is not None)
        ],
        "unknown_code": [c for c in feed.columns if c.allowed],
        "reversed_timestamps": list(feed.time_order),
        "duplicate_key": [None],
    }


def _bad_value(col, rng: np.random.Generator):
    lo, hi = col.min, col.max
    if hi is not None and (lo is None or lo < 0 or rng.random() < 0.7):
        span = (hi - (lo or 0)) or 1
        value = hi + span * rng.uniform(0.5, 2.0) + 1
    else:
        value = (lo or 0) - abs((hi or 100) - (lo or 0)) * rng.uniform(0.1, 1.0) - 1
    return int(round(value)) if col.type == "integer" else round(float(value), 2)


def _unknown_code(col) -> str:
    if col.name == "town_code":
        return "330327999"
    if col.name == "event_type_code":
        return "990199"
    return "UNKNOWN"


def _set(frame: pd.DataFrame, row: int, column: str, value) -> None:
    """Set one cell, widening the column's dtype when the value needs it (a null in a bool column)."""
    dtype = frame[column].dtype
    if value is None and pd.api.types.is_bool_dtype(dtype):
        frame[column] = frame[column].astype("boolean")
    elif value is None and pd.api.types.is_integer_dtype(dtype):
        frame[column] = frame[column].astype("Int64")
    elif isinstance(value, float) and pd.api.types.is_integer_dtype(dtype):
        frame[column] = frame[column].astype("float64")
    frame.loc[row, column] = value


def inject_defects(
    feed: Feed,
    frame: pd.DataFrame,
    delivery_date: str,
    rng: np.random.Generator,
    rate: float,
    max_per_type: int,
    protected: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the delivery with defects and the truth (one row per defective row)."""
    frame = frame.reset_index(drop=True).copy()
    n = len(frame)
    candidates = {k: v for k, v in _candidates(feed).items() if v}
    per_type = min(max_per_type, int(round(n * rate / max(1, len(candidates))))) if n else 0
    if n >= 20:
        per_type = max(1, per_type)
    free = np.ones(n, dtype=bool) if protected is None else ~protected[:n].astype(bool)
    keys = record_keys(feed, frame)
    marks: list[tuple[int, str, str, str]] = []  # (original row, defect, column, detail)
    duplicates: list[int] = []
    for defect, options in candidates.items():
        for _ in range(per_type):
            pool = np.flatnonzero(free)
            if not len(pool):
                break
            row = int(rng.choice(pool))
            free[row] = False
            if defect == "null_required":
                col = options[int(rng.integers(len(options)))]
                _set(frame, row, col.name, None)
                marks.append((row, defect, col.name, "required value missing"))
            elif defect == "out_of_range":
                col = options[int(rng.integers(len(options)))]
                value = _bad_value(col, rng)
                _set(frame, row, col.name, value)
                marks.append((row, defect, col.name, f"{value} outside [{col.min}, {col.max}]"))
            elif defect == "unknown_code":
                col = options[int(rng.integers(len(options)))]
                _set(frame, row, col.name, _unknown_code(col))
                marks.append((row, defect, col.name, f"{_unknown_code(col)!r} not in the reference list"))
            elif defect == "reversed_timestamps":
                earlier, later = options[int(rng.integers(len(options)))]
                if pd.isna(frame.loc[row, earlier]):
                    continue
                shift = pd.Timedelta(seconds=int(rng.integers(60, 7200)))
                frame.loc[row, later] = frame.loc[row, earlier] - shift
                marks.append((row, defect, later, f"{later} is {shift} before {earlier}"))
            else:
                duplicates.append(row)
    # Duplicate keys: a second copy of the record, right after it, with one value changed.
    order = list(range(n))
    extra = []
    for row in duplicates:
        copy = frame.loc[[row]].copy()
        value_cols = [
            c
            for c in feed.columns
            if c.name not in feed.primary_key and c.type in ("float", "integer", "string") and not c.allowed
        ]
        if value_cols:
            col = value_cols[int(rng.integers(len(value_cols)))]
            old = copy.iloc[0][col.name]
            copy[col.name] = (old + 1 if col.type != "string" else f"{old}*") if pd.notna(old) else old
        extra.append(copy)
    if extra:
        dup_frame = pd.concat(extra)
        frame = pd.concat([frame, dup_frame])
        position = {row: n + j for j, row in enumerate(duplicates)}
        order = []
        for row in range(n):
            order.append(row)
            if row in position:
                order.append(position[row])
        frame = frame.iloc[order].reset_index(drop=True)
    new_position = {orig: pos for pos, orig in enumerate(order)}
    truth = [
        (feed.name, delivery_date, keys[row], new_position[row], defect, column, detail)
        for row, defect, column, detail in marks
    ]
    for j, row in enumerate(duplicates):
        truth.append(
            (
                feed.name,
                delivery_date,
                keys[row],
                new_position[row],
                "duplicate_key",
                ",".join(feed.primary_key),
                "original of a duplicated key",
            )
        )
        truth.append(
            (
                feed.name,
                delivery_date,
                keys[row],
                new_position[n + j],
                "duplicate_key",
                ",".join(feed.primary_key),
                "second record with the same key and other values",
            )
        )
    truth_frame = pd.DataFrame(truth, columns=TRUTH_COLUMNS).sort_values("row_number", kind="stable")
    return frame, truth_frame.reset_index(drop=True)
