"""The pipeline's tunable numbers, from ``pipeline.toml`` (or the file named by ``EDW_PIPELINE_SETTINGS``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_SETTINGS = Path(__file__).with_name("pipeline.toml")
SETTINGS_ENV = "EDW_PIPELINE_SETTINGS"


@dataclass(frozen=True)
class RowCountBand:
    """``[row_count_band]``: the bounds of ``row_count_in_band`` (their meaning is in ``pipeline.toml``)."""

    batches: int
    low: float
    high: float
    min_history: int
    floor_from_rows_per_day: int
    chance_sigmas: float

    def history(self) -> dict:
        """The ``history`` of a generated ``row_count_in_band`` rule (what a suite may override)."""
        return {k: v for k, v in asdict(self).items() if k != "chance_sigmas"}


def _settings_file(path: str | Path | None) -> tuple[Path, dict]:
    path = Path(path or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"pipeline settings file {path} does not exist; unset {SETTINGS_ENV} or point it at a copy of "
            f"{DEFAULT_SETTINGS}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"pipeline settings file {path} is not valid TOML: {exc}") from None


def row_count_band_settings(path: str | Path | None = None) -> RowCountBand:
    path, data = _settings_file(path)
    section = data.get("row_count_band", {})
    names = [f.name for f in fields(RowCountBand)]
    missing = [name for name in names if name not in section]
    if missing:
        raise ValueError(
            f"pipeline settings file {path}: [row_count_band] lacks {missing}; start from {DEFAULT_SETTINGS}"
        )
    return RowCountBand(**{name: section[name] for name in names})


def days_per_build(path: str | Path | None = None) -> int:
    """``[backfill] days_per_build``: how many days a backfill loads before it builds the marts."""
    path, data = _settings_file(path)
    value = data.get("backfill", {}).get("days_per_build")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"pipeline settings file {path}: [backfill] days_per_build must be a whole number of days, 1 or "
            f"more (is {value!r}); start from {DEFAULT_SETTINGS}"
        )
    return value


@dataclass(frozen=True)
class BuildWait:
    """``[build]``: how a ``warehouse__build`` run started on asset events waits for the day's ingest runs."""

    wait_for_ingest_minutes: float
    poke_seconds: float


def build_wait_settings(path: str | Path | None = None) -> BuildWait:
    """``[build]`` of the settings file (its meaning is in ``pipeline.toml``)."""
    path, data = _settings_file(path)
    section = data.get("build", {})
    values = {}
    for field in fields(BuildWait):
        value = section.get(field.name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"pipeline settings file {path}: [build] {field.name} must be a number, 0 or more (is "
                f"{value!r}); start from {DEFAULT_SETTINGS}"
            )
        values[field.name] = float(value)
    if values["poke_seconds"] == 0:
        raise ValueError(f"pipeline settings file {path}: [build] poke_seconds must be more than 0")
    return BuildWait(**values)


def build_passes(days: list, per_build: int | None = None) -> list[list]:
    """``days`` in the passes of a backfill, in order: each pass loads its days, then builds the marts
    (``days_per_build`` of them at most, so that no build takes in more than memory allows)."""
    size = per_build or days_per_build()
    return [days[k : k + size] for k in range(0, len(days), size)]
