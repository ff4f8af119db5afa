"""Airflow ingestion DAGs: one `ingest__<feed>` DAG per feed of the source catalog.

The DAGs are built by a factory (emergency_dw.pipeline.dags); this file is the wiring only. When Airflow
parses the file to run one DAG's task (a worker, or `dag.test()` through `edw run`), its parsing context
names that DAG and only that one is built (Airflow's documented dynamic-DAG optimisation).
"""

from airflow.sdk import get_parsing_context

from emergency_dw.catalog import all_feeds
from emergency_dw.pipeline.dags import build_ingest_dag

_wanted = get_parsing_context().dag_id
for _feed in all_feeds():
    if _wanted is None or _wanted == f"ingest__{_feed.name}":
        globals()[f"ingest__{_feed.name}"] = build_ingest_dag(_feed)
