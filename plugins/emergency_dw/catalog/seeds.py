"""The reference lists as dbt seeds (towns, departments, event types), written from the catalog so a
code is declared once: ``edw catalog --seeds`` rewrites them; a test checks they are in step."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .departments import DEPARTMENTS
from .references import EVENT_TYPES, INDUSTRIES, TOWNS


def reference_seeds() -> dict[str, str]:
    """Seed file name -> CSV text."""
    tables = {
        "towns.csv": (
            ["town_code", "town_name_zh", "town_name", "town_kind", "lat", "lon"],
            [[t.code, t.name_zh, t.name, t.kind, t.lat, t.lon] for t in TOWNS],
        ),
        "departments.csv": (
            ["department_code", "department_name", "department_name_zh", "provider_kind"],
            [[d.code, d.name, d.name_zh, d.kind] for d in DEPARTMENTS],
        ),
        "event_types.csv": (
            ["event_type_code", "event_category", "event_type_name_zh", "event_type_name"],
            [[e.code, e.category, e.name_zh, e.name] for e in EVENT_TYPES],
        ),
        "industries.csv": (["industry_code", "industry_name_zh"], [[k, v] for k, v in INDUSTRIES.items()]),
    }
    out = {}
    for name, (header, rows) in tables.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        out[name] = buffer.getvalue()
    return out


def write_reference_seeds(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in reference_seeds().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
