"""The queries BI tools send to the marts (``bi_queries.sql``: the exposures' dashboards and the README's
examples), read as a list so that the benchmark times them and the tests run them as ``bi_reader``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

QUERIES = Path(__file__).resolve().with_name("bi_queries.sql")
HEADER = re.compile(r"^-- name: (?P<name>\w+)\n-- what: (?P<what>[^\n]+)\n", re.M)


@dataclass(frozen=True)
class BiQuery:
    name: str
    what: str  # the dashboard or example it serves
    sql: str  # one statement, without its semicolon


def bi_queries(path: Path = QUERIES) -> list[BiQuery]:
    """The queries of ``path`` in file order. Raises ValueError naming a block that is not one statement."""
    text = path.read_text(encoding="utf-8")
    heads = list(HEADER.finditer(text))
    out = []
    for k, head in enumerate(heads):
        body = text[head.end() : heads[k + 1].start() if k + 1 < len(heads) else len(text)].strip()
        sql = body.rstrip(";").strip()
        if not sql or ";" in sql:
            raise ValueError(f"{path.name}: query {head['name']} must be one SQL statement ending with ';'")
        out.append(BiQuery(head["name"], head["what"].strip(), sql))
    if len({q.name for q in out}) != len(out):
        raise ValueError(f"{path.name}: two queries share a name")
    return out
