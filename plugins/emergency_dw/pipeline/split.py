"""A batch that passed split in two: the rows that load into ``raw.<feed>`` (with their lineage) and the rows
held in ``quarantine.<feed>``, each with the rules it failed, its conversion errors and the record as
delivered (personal fields hashed). ``quarantine.py`` is the other side: what is held, and replays."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..catalog import Feed
from ..pii import hash_value, pii_salt
from .batch import LandedBatch
from .parse import storable_json
from .tables import ARROW_TYPES, QUARANTINE_COLUMNS, arrow_table, column_array, raw_columns
from .verdict import Verdict


@dataclass
class Rows:
    """What a batch that passed loads: ``raw.<feed>``'s rows and ``quarantine.<feed>``'s."""

    raw: pa.Table
    quarantine: pa.Table


def split_rows(
    feed: Feed, landed: LandedBatch, delivered: pa.Table, verdict: Verdict, now: pd.Timestamp
) -> Rows:
    """The batch's kept and held rows, stamped with the batch, its source and ``now``."""
    parsed = verdict.parsed
    if parsed is None or verdict.failure is not None:
        raise ValueError(f"batch {landed.batch_id} failed its rules: nothing of it is split or loaded")
    held = verdict.quarantined
    failed_by_row = verdict.failed_rules_by_row()
    quarantine = pd.DataFrame(
        {
            "_batch_id": landed.batch_id,
            "_row": held,
            "_failed_rules": [json.dumps(failed_by_row.get(int(r), [])) for r in held],
            "_errors": [
                storable_json(parsed.type_errors[int(r)]) if int(r) in parsed.type_errors else None
                for r in held
            ],
            "_record": records_json(delivered, held, feed),
            "_quarantined_at": now,
            "_source": landed.source,
        }
    )
    keep = ~parsed.frame["_row"].isin(held).to_numpy(dtype=bool)
    lineage = {"_batch_id": landed.batch_id, "_loaded_at": now, "_source": landed.source}
    return Rows(
        raw=_raw_arrow(parsed.frame, feed, keep, lineage),
        quarantine=arrow_table(quarantine, QUARANTINE_COLUMNS),
    )


def _raw_arrow(frame: pd.DataFrame, feed: Feed, keep: np.ndarray, lineage: dict) -> pa.Table:
    """The rows of the parsed batch that ``keep`` marks, as ``raw.<feed>``'s Arrow table, with the lineage
    columns (``lineage``: name -> the batch's value). Built column by column from the frame, the kept rows
    picked in Arrow, so a day of power readings is never copied whole in pandas first."""
    rows = int(keep.sum())
    mask = None if rows == len(frame) else pa.array(keep)
    arrays = []
    for spec in raw_columns(feed):
        if spec.name in lineage:
            arrays.append(pa.repeat(pa.scalar(lineage[spec.name], type=ARROW_TYPES[spec.type]), rows))
            continue
        array = column_array(frame, spec)
        arrays.append(array if mask is None else array.filter(mask))
    return pa.table(arrays, names=[c.name for c in raw_columns(feed)])


def records_json(delivered: pa.Table, rows: np.ndarray, feed: Feed) -> list[str]:
    """The quarantined rows as delivered (keyed by the source's headers), their personal fields hashed."""
    picked = delivered.take(pa.array(rows, type=pa.int64())).to_pylist()
    keys = _personal_keys(feed)
    if keys:
        salt = pii_salt()
        for record in picked:
            for key in keys & record.keys():
                if record[key] is not None and str(record[key]).strip():
                    record[key] = hash_value(record[key], salt)
    return [storable_json(rec) for rec in picked]


def _personal_keys(feed: Feed) -> set[str]:
    """The keys a delivered record of ``feed`` may carry personal data under (its header, or its name)."""
    return {c.header for c in feed.columns if c.pii} | {c.name for c in feed.columns if c.pii}
