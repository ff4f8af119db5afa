"""Quarantined rows: what is held and why, and replaying batches from the raw lake after a fix (a batch's
rows are held as it loads: ``split.py``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from ..catalog import all_feeds, get_feed
from ..config import claim_data_directory, settings
from ..warehouse import connect
from .ingest import BatchFailed, BatchResult, LandedBatch, validate_and_load


def summary(feed_name: str | None = None) -> list[dict]:
    """Rows held in quarantine by feed and failed rule."""
    feeds = [get_feed(feed_name)] if feed_name else list(all_feeds())
    warehouse = connect(settings().warehouse_url)
    out = []
    try:
        for feed in feeds:
            try:
                rows = warehouse.query(
                    f'select _batch_id, _failed_rules from quarantine."{feed.name}"'
                ).to_pylist()
            except Exception:  # noqa: BLE001 - a feed never loaded has no quarantine table
                continue
            by_rule: Counter = Counter()
            batches: dict[str, set] = {}
            for row in rows:
                for rule in json.loads(row["_failed_rules"]):
                    by_rule[rule] += 1
                    batches.setdefault(rule, set()).add(row["_batch_id"])
            out += [
                {"feed": feed.name, "rule": rule, "rows": n, "batches": len(batches[rule])}
                for rule, n in sorted(by_rule.items())
            ]
    finally:
        warehouse.close()
    return out


def replay(feed_name: str) -> list[BatchResult]:
    """Re-validate every batch of the feed that holds quarantined rows or failed, from the raw lake."""
    feed = get_feed(feed_name)
    claim_data_directory()
    warehouse = connect(settings().warehouse_url)
    try:
        batches = warehouse.query(
            "select * from audit.batches where feed = ? and (rows_quarantined > 0 or status = 'failed') order by batch_id",
            [feed.name],
        ).to_pylist()
    finally:
        warehouse.close()
    results = []
    for b in batches:
        refused = _lake_file_problem(feed.name, b)
        if refused:
            results.append(
                BatchResult(
                    feed.name,
                    b["batch_id"],
                    "refused",
                    b["rows_extracted"],
                    b["rows_loaded"],
                    b["rows_quarantined"],
                    b["rows_rejected"],
                    "lake_checksum",
                    refused,
                )
            )
            continue
        landed = LandedBatch(
            feed=feed.name,
            batch_id=b["batch_id"],
            path=b["landed_path"],
            rows=b["rows_extracted"],
            source=b["source"] or "",
            interval_start=b["interval_start"].isoformat() if b["interval_start"] else None,
            interval_end=b["interval_end"].isoformat() if b["interval_end"] else None,
        )
        try:
            results.append(validate_and_load(landed))
        except BatchFailed as exc:
            results.append(
                BatchResult(
                    feed.name,
                    b["batch_id"],
                    "failed",
                    b["rows_extracted"],
                    0,
                    0,
                    b["rows_extracted"],
                    exc.rule,
                    str(exc),
                )
            )
    return results


def _lake_file_problem(feed: str, batch: dict) -> str | None:
    """Why the lake file a batch's audit row names cannot be replayed (missing, or not the file that was
    loaded: its sha256 differs from the one recorded), else None. Replay never trusts whatever file is
    there: a data directory shared by two warehouses, or a file edited by hand, is refused."""
    path = Path(batch["landed_path"] or "")
    where = f"feed {feed}, batch {batch['batch_id']}, rule lake_checksum"
    if not batch["landed_path"] or not path.is_file():
        return (
            f"{where}: the lake file {path} that was loaded is gone; nothing was replayed. Restore it from a "
            f"backup of the lake, or ingest the batch again from its source (edw ingest {feed} --date D)"
        )
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != batch["checksum"]:
        return (
            f"{where}: the lake file {path} is not the one this warehouse loaded (sha256 {actual[:12]}..., "
            f"recorded {str(batch['checksum'])[:12]}...); nothing was replayed and the warehouse is unchanged. "
            "Another warehouse may share this data directory (give each its own EDW_DATA_DIR), or the file was "
            f"changed; ingest the batch again from its source (edw ingest {feed} --date D)"
        )
    return None
