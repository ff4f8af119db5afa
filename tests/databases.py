"""Fresh Postgres databases for tests: created from EDW_TEST_POSTGRES_URL and dropped afterwards (the
benchmark's helpers, on the tests' server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from edw_bench import warehouses

from conftest import POSTGRES_URL


def postgres_url(database: str, user: str | None = None, password: str | None = None) -> str:
    url = sa.make_url(POSTGRES_URL).set(database=database)
    if user is not None:
        url = url.set(username=user, password=password)
    return url.render_as_string(hide_password=False)


def create_database(prefix: str) -> str:
    return warehouses.create_database(POSTGRES_URL, prefix)


def drop_database(name: str) -> None:
    warehouses.drop_database(POSTGRES_URL, name)


@contextmanager
def postgres_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh Postgres database (name, URL), dropped afterwards."""
    name = create_database(prefix)
    try:
        yield name, postgres_url(name)
    finally:
        drop_database(name)
