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


def row_count_band_settings(path: str | Path | None = None) -> RowCountBand:
    path = Path(path or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"pipeline settings file {path} does not exist; unset {SETTINGS_ENV} or point it at a copy of "
            f"{DEFAULT_SETTINGS}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"pipeline settings file {path} is not valid TOML: {exc}") from None
    section = data.get("row_count_band", {})
    names = [f.name for f in fields(RowCountBand)]
    missing = [name for name in names if name not in section]
    if missing:
        raise ValueError(
            f"pipeline settings file {path}: [row_count_band] lacks {missing}; start from {DEFAULT_SETTINGS}"
        )
    return RowCountBand(**{name: section[name] for name in names})
