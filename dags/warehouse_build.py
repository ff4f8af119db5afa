"""Airflow DAG `warehouse__build`: the dbt build, scheduled on the raw tables' Assets published by the
ingest DAGs; `EDW_BUILD_MODE` says how it runs dbt (one `dbt build` task, or Cosmos's task per model).

Rendering the dbt graph takes seconds, so the DAG is not built when Airflow parses this file for
another DAG's task (its parsing context names that DAG).
"""

from airflow.sdk import get_parsing_context

from emergency_dw.pipeline.build_dag import WAREHOUSE_DAG_ID, build_warehouse_dag

if get_parsing_context().dag_id in (None, WAREHOUSE_DAG_ID):
    warehouse__build = build_warehouse_dag()
