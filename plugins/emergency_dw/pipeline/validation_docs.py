"""Each batch's Great Expectations result, kept for the auditors' Data Docs (``data/validation/``) with the
personal values it quotes replaced by their salted hashes: the Data Docs never show a phone or ID number."""

from __future__ import annotations

import json
from pathlib import Path

from ..catalog import Feed
from ..config import settings
from ..pii import hash_value, pii_salt


def hash_personal_values(feed: Feed, gx_result: dict) -> dict:
    """The result of every rule on a personal column with the values it quotes (the unexpected values, and
    the values beside each unexpected row's number) replaced by their salted hashes."""
    personal = {c.name for c in feed.columns if c.pii}
    if not personal:
        return gx_result
    salt = None

    def hashed(value):
        nonlocal salt
        if value is None or isinstance(value, bool):
            return value
        salt = salt or pii_salt()
        return hash_value(value, salt)

    for item in gx_result.get("results") or []:
        kwargs = (item.get("expectation_config") or {}).get("kwargs") or {}
        columns = {
            kwargs.get("column"),
            kwargs.get("column_A"),
            kwargs.get("column_B"),
            *(kwargs.get("column_list") or []),
        }
        if not columns & personal or not item.get("result"):
            continue
        result = item["result"]
        for key in ("unexpected_list", "partial_unexpected_list"):
            if result.get(key):
                result[key] = [hashed(v) for v in result[key]]
        for entry in result.get("partial_unexpected_counts") or []:
            entry["value"] = hashed(entry.get("value"))
        for key in ("unexpected_index_list", "partial_unexpected_index_list"):
            for entry in result.get(key) or []:
                if isinstance(entry, dict):
                    for name in personal & entry.keys():
                        entry[name] = hashed(entry[name])
    return gx_result


def keep_validation_result(feed: Feed, batch_id: str, gx_result: dict) -> Path:
    """Write the batch's result (personal values hashed) where the Data Docs read it; returns the file."""
    gx_result = hash_personal_values(feed, gx_result)
    path = settings().data_dir / "validation" / feed.name / (batch_id.replace(":", "__") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(gx_result, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path
