"""Airflow DAG `warehouse__build`: the dbt build (models and tests as tasks via astronomer-cosmos),
scheduled on the raw tables' Assets published by the ingest DAGs."""

from emergency_dw.pipeline.build_dag import build_warehouse_dag

warehouse__build = build_warehouse_dag()
