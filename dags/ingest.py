"""Airflow ingestion DAGs: one `ingest__<feed>` DAG per feed of the source catalog.

The DAGs are built by a factory (emergency_dw.pipeline.dags); this file is the wiring only.
"""

from emergency_dw.catalog import all_feeds
from emergency_dw.pipeline.dags import build_ingest_dag

for _feed in all_feeds():
    globals()[f"ingest__{_feed.name}"] = build_ingest_dag(_feed)
