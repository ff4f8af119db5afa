"""The reports' tunable numbers, from ``reports.toml`` (or the file named by ``EDW_REPORTS_SETTINGS``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SETTINGS = Path(__file__).with_name("reports.toml")
SETTINGS_ENV = "EDW_REPORTS_SETTINGS"
SECTIONS = ("summary", "levels", "audit", "map", "response")


@dataclass(frozen=True)
class ReportSettings:
    summary: dict[str, Any]
    levels: dict[str, str]  # risk level -> fill colour
    audit: dict[str, Any]
    map: dict[str, Any]
    response: dict[str, Any]
    source: Path

    def level_colour(self, level: str) -> str:
        try:
            return self.levels[level]
        except KeyError:
            raise ValueError(
                f"risk level {level!r} (seed risk_level_thresholds) has no colour in [levels] of {self.source}; "
                f'add a line `{level} = "#rrggbb"` there'
            ) from None


SUMMARY_KEYS = ("top_enterprises", "printed_feeds", "printed_rules", "printed_enterprises")


def load_report_settings(path: str | Path | None = None) -> ReportSettings:
    path = Path(path or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"reports settings file {path} does not exist; unset {SETTINGS_ENV} or point it at a copy of "
            f"{DEFAULT_SETTINGS}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"reports settings file {path} is not valid TOML: {exc}") from None
    missing = [name for name in SECTIONS if name not in data]
    if missing:
        raise ValueError(
            f"reports settings file {path} lacks the sections {missing}; start from {DEFAULT_SETTINGS}"
        )
    lacking = [key for key in SUMMARY_KEYS if key not in data["summary"]]
    if lacking:
        raise ValueError(
            f"reports settings file {path} lacks {', '.join(lacking)} in [summary]; start from {DEFAULT_SETTINGS}"
        )
    return ReportSettings(**{name: data[name] for name in SECTIONS}, source=path)
