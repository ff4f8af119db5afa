"""The simulator's scenario: tunable numbers from ``scenario.toml`` (or a file of the user's)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SCENARIO = Path(__file__).with_name("scenario.toml")


@dataclass(frozen=True)
class Scenario:
    seed: int
    power: dict[str, Any]
    cable: dict[str, Any]
    defects: dict[str, Any]
    http: dict[str, Any]
    source: Path

    @property
    def anomalies_per_day(self) -> dict[str, int]:
        return dict(self.power["anomalies_per_day"])


def load_scenario(path: str | Path | None = None, seed: int | None = None) -> Scenario:
    """Read a scenario file; ``seed`` (when given) overrides the file's seed."""
    path = Path(path or os.environ.get("EDW_SIM_SCENARIO") or DEFAULT_SCENARIO)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"scenario file {path} does not exist; pass an existing file to --scenario"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"scenario file {path} is not valid TOML: {exc}") from None
    missing = {"seed", "power", "cable", "defects", "http"} - set(data)
    if missing:
        raise ValueError(
            f"scenario file {path} lacks the sections {sorted(missing)}; start from {DEFAULT_SCENARIO}"
        )
    return Scenario(
        seed=int(seed if seed is not None else data["seed"]),
        power=data["power"],
        cable=data["cable"],
        defects=data["defects"],
        http=data["http"],
        source=path,
    )
