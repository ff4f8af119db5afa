"""The source catalog: every feed declared once.

``departments.py`` lists who delivers; ``feeds/<dept>.py`` declares each department's feeds (with the
shorthands of ``columns.py`` and ``connections.py``); ``model.py`` is the vocabulary (Feed, Column, the
connectors); ``references.py`` the code lists columns are checked against. Import from here:
``FEEDS``, ``DEPARTMENTS``, ``all_feeds()``, ``get_feed(name)``, ``department(code)``.
"""

from __future__ import annotations

from .departments import DEPARTMENTS
from .feeds import FEEDS
from .model import Column, Department, Feed, FileDrop, HttpJson, Sql
from .references import EVENT_TYPES, INDUSTRIES, TOWNS

__all__ = [
    "Column",
    "Department",
    "Feed",
    "FileDrop",
    "HttpJson",
    "Sql",
    "DEPARTMENTS",
    "EVENT_TYPES",
    "FEEDS",
    "INDUSTRIES",
    "TOWNS",
    "all_feeds",
    "department",
    "get_feed",
]

_BY_NAME: dict[str, Feed] = {feed.name: feed for feed in FEEDS}
_DEPTS: dict[str, Department] = {dept.code: dept for dept in DEPARTMENTS}

if len(_BY_NAME) != len(FEEDS):
    raise ValueError("the catalog declares a feed name twice")
for _feed in FEEDS:
    if _feed.department not in _DEPTS:
        raise ValueError(f"feed {_feed.name}: unknown department {_feed.department!r}")


def all_feeds() -> tuple[Feed, ...]:
    return FEEDS


def get_feed(name: str) -> Feed:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no feed named {name!r} in the catalog; `edw catalog` lists them") from None


def department(code: str) -> Department:
    return _DEPTS[code]
