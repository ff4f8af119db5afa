"""The benchmark (``make bench`` / ``edw bench``): every stage against baselines measured in the same run.

Figures, each with its DESIGN section 7 target:
- load: the pipeline's load of a day of power readings into Postgres, against a bare ADBC ingest of the
  same Arrow table into the same database and against ``DataFrame.to_sql`` (timed on a sample and
  extrapolated);
- validation throughput of the power suite (rows/s);
- a city-day, all feeds, simulate -> ingest (every DAG for real) -> dbt build, each stage timed and the
  Airflow overhead shown apart;
- the seed's full volume (31.59 M records) end to end as a backfill: every day's batches, feeds side by
  side, a dbt build after every `[backfill] days_per_build` days (as `edw backfill` builds);
- day after day, ingest and incremental build: the last day's build against the first (``--days``);
- peak memory of every process;
- the BI queries (``reports/bi_queries.sql``) on the history's warehouse: median and p95 of each, and the
  indexes a Postgres plan uses;
- Airflow's scheduler running the day due now on Postgres (LocalExecutor, the ingest DAGs on their
  schedule, ``warehouse__build`` on their Assets): day end -> marts, the task work, the critical path and
  the scheduler's overhead, once per build mode of ``warehouse__build``.
The history, city-day and bi stages run on the embedded DuckDB and on a Postgres database of their own
(``--warehouse``), each figure tagged with its warehouse; the figures both have are shown side by side.
Results go to ``$EDW_DATA_DIR/bench/latest.json``.

A package apart from the pipeline (``emergency_dw``), whose public functions alone it calls; the runtime
never imports it (``.importlinter``). A module per stage (``load``, ``validation``, ``volume``, ``history``,
``city_day``, ``bi``, ``scheduler``), ``runner`` to run them, ``figures`` for the figures, targets and memory,
``processes`` and ``workers`` for the processes the stages run in, ``airflow_cluster`` for the
Airflow the scheduler stage (and the Airflow tests) start, ``warehouses`` for the warehouses the
history, city-day and bi stages run on.
"""

from .figures import Figure, targets
from .runner import STAGES, latest_path, run_bench
from .scheduler import modes_side_by_side, scheduler_modes
from .warehouses import BENCH_DATABASE, LABELS, WAREHOUSES, plan_run, server_of, side_by_side

__all__ = [
    "BENCH_DATABASE",
    "LABELS",
    "STAGES",
    "WAREHOUSES",
    "Figure",
    "latest_path",
    "modes_side_by_side",
    "plan_run",
    "run_bench",
    "scheduler_modes",
    "server_of",
    "side_by_side",
    "targets",
]
