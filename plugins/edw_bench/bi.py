"""Stage bi: the BI queries (``reports/bi_queries.sql``) on the history's warehouse: median and p95 of
each, and the indexes a Postgres plan uses."""

from __future__ import annotations

import os
import statistics
import time

from .figures import Figure, targets

BI_READER_ENV = "EDW_BI_READER_URL"  # Postgres: the warehouse as bi_reader sees it (else the warehouse URL)


def bench_bi(warehouse_url: str) -> list[Figure]:
    """Each query of ``reports/bi_queries.sql`` (what the dashboards and the README's examples send) run
    ``[bi] runs`` times after one warm-up, as a BI tool would: median and p95 wall time with the rows
    fetched, and on Postgres the indexes its plan uses. On Postgres it connects as ``EDW_BI_READER_URL``
    when set (bi_reader), else as the warehouse URL; the embedded DuckDB file is opened read-only. A query
    that returns no rows read empty marts (a bench of some feeds only): its time is shown, not judged."""
    from emergency_dw.reports.bi_queries import bi_queries

    settings_ = targets()["bi"]
    runs, limit = int(settings_["runs"]), float(settings_["max_p95_ms"])
    url = warehouse_url
    if url.startswith(("postgresql://", "postgres://")):
        url = os.environ.get(BI_READER_ENV) or url
        import psycopg

        con = psycopg.connect(url, autocommit=True)

        def run(sql: str) -> int:
            with con.cursor() as cur:
                cur.execute(sql)
                return len(cur.fetchall())

        def indexes(sql: str) -> str:
            with con.cursor() as cur:
                cur.execute(f"explain (format json) {sql}")
                plan = cur.fetchone()[0]
            found = sorted(set(_plan_values(plan, "Index Name")))
            return ", ".join(found) or "none (sequential scans)"
    else:
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)

        def run(sql: str) -> int:
            return len(con.execute(sql).fetchall())

        def indexes(sql: str) -> str:
            return "DuckDB: no indexes (zone maps)"

    figures = []
    try:
        for query in bi_queries():
            rows = run(query.sql)  # warm-up: the first run reads from disk
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                run(query.sql)
                times.append((time.perf_counter() - started) * 1000)
            median, p95 = statistics.median(times), statistics.quantiles(times, n=20, method="inclusive")[-1]
            # a query that finds no rows read an empty mart (its feeds were not benched): timed, not judged
            empty = "" if rows else "no rows, the marts it reads are empty here (not judged); "
            figures.append(
                Figure(
                    f"bi: {query.name} (p95)",
                    p95,
                    "ms",
                    f"< {limit:g} ms",
                    p95 < limit if rows else None,
                    f"{empty}median {median:.1f} ms over {runs} runs, {rows:,} rows; {query.what}; "
                    f"indexes: {indexes(query.sql)}",
                )
            )
    finally:
        con.close()
    return figures


def _plan_values(node, key: str):
    """Every value of ``key`` anywhere in a Postgres JSON plan."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            else:
                yield from _plan_values(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _plan_values(item, key)
