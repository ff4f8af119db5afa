"""Fresh Postgres databases for tests: created from EDW_TEST_POSTGRES_URL and dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from conftest import POSTGRES_URL


def postgres_url(database: str, user: str | None = None, password: str | None = None) -> str:
    url = sa.make_url(POSTGRES_URL).set(database=database)
    if user is not None:
        url = url.set(username=user, password=password)
    return url.render_as_string(hide_password=False)


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    admin.dispose()
    return name


def drop_database(name: str) -> None:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@contextmanager
def postgres_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh Postgres database (name, URL), dropped afterwards."""
    name = create_database(prefix)
    try:
        yield name, postgres_url(name)
    finally:
        drop_database(name)
