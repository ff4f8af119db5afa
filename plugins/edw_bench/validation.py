"""Stage validation: the throughput of the power suite (rows/s)."""

from __future__ import annotations

import datetime as dt
import time

from .figures import Figure
from .load import power_arrow


def bench_validation(scale: float, day: dt.date) -> list[Figure]:
    from emergency_dw.pipeline.ingest import day_interval, resolve_rules
    from emergency_dw.pipeline.tables import ensure_pipeline_tables
    from emergency_dw.pipeline.validate import run_suite
    from emergency_dw.warehouse import connect

    feed, parsed, _ = power_arrow(scale, day)
    # the suite as a batch of that day runs it (an empty warehouse: no reference set, no history yet)
    warehouse = connect("duckdb:///:memory:")
    ensure_pipeline_tables(warehouse, feed)
    rules = resolve_rules(warehouse, feed, "bench", parsed.frame, day_interval(day))
    warehouse.close()
    run_suite("warm-up", parsed.frame.head(1000), rules)
    started = time.perf_counter()
    run_suite("bench", parsed.frame, rules)
    seconds = time.perf_counter() - started
    rows = len(parsed.frame)
    return [
        Figure(
            "validation: power suite",
            rows / seconds,
            "rows/s",
            "",
            None,
            f"{len(rules)} rules on {rows:,} rows in {seconds:.1f} s",
        )
    ]
