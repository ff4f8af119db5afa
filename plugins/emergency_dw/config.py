"""Run-time settings read from the environment (never from the repository).

Every path the platform writes lives under ``EDW_DATA_DIR``; the warehouse is ``EDW_WAREHOUSE_URL``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_SEED = 20240601


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_url: str

    @property
    def sources_dir(self) -> Path:
        """Where the simulator writes what the departments' systems hold."""
        return self.data_dir / "sources"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"


def settings() -> Settings:
    data_dir = Path(os.environ.get("EDW_DATA_DIR", "data")).resolve()
    warehouse_url = os.environ.get("EDW_WAREHOUSE_URL") or f"duckdb:///{data_dir / 'warehouse.duckdb'}"
    return Settings(data_dir=data_dir, warehouse_url=warehouse_url)


def default_date() -> dt.date:
    """Yesterday in Asia/Shanghai: the last complete local day."""
    return dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)
