"""How a feed is read from its department's system: its REST API or a table of its database.

Each builds the connector declaration with the Airflow connection id the department's feeds share
(``src_<dept>_api``, ``src_<dept>_db``); file drops are declared with :class:`FileDrop` directly.
"""

from __future__ import annotations

from .model import HttpJson, Sql


def api(dept: str, feed: str, page_size: int = 1000) -> HttpJson:
    """``GET /api/v1/<dept>/<feed>``, through connection ``src_<dept>_api``."""
    return HttpJson(endpoint=f"/api/v1/{dept}/{feed}", conn_id=f"src_{dept}_api", page_size=page_size)


def database(dept: str, table: str, chunk_rows: int = 50_000) -> Sql:
    """Table ``table`` of the department's database, through connection ``src_<dept>_db``."""
    return Sql(table=table, conn_id=f"src_{dept}_db", chunk_rows=chunk_rows)
