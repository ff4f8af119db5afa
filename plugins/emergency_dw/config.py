"""Run-time settings read from the environment (never from the repository).

Every path the platform writes lives under ``EDW_DATA_DIR``; the warehouse is ``EDW_WAREHOUSE_URL``.
The embedded DuckDB warehouse is bounded by ``EDW_DUCKDB_MEMORY_LIMIT`` (default 1GB: the pipeline and
dbt share one process, which must stay under 2 GiB; DuckDB spills the rest to its own
``warehouse.duckdb.tmp`` folder beside the file) and uses ``EDW_DUCKDB_THREADS`` threads (default: every core).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_SEED = 20240601
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_url: str
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_threads: int = 0  # 0: DuckDB's default, every core

    @property
    def sources_dir(self) -> Path:
        """Where the simulator writes what the departments' systems hold."""
        return self.data_dir / "sources"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def transform_url(self) -> str:
        """The warehouse as dbt connects to it: ``EDW_TRANSFORM_WAREHOUSE_URL`` when set (in production, the
        role that owns what dbt builds, ``edw_transformer``, while the loads run as ``edw_loader``), else
        the warehouse URL."""
        return os.environ.get("EDW_TRANSFORM_WAREHOUSE_URL") or self.warehouse_url


def settings() -> Settings:
    data_dir = Path(os.environ.get("EDW_DATA_DIR", "data")).resolve()
    warehouse_url = os.environ.get("EDW_WAREHOUSE_URL") or f"duckdb:///{data_dir / 'warehouse.duckdb'}"
    threads = os.environ.get("EDW_DUCKDB_THREADS", "0").strip() or "0"
    if not threads.isdigit():
        raise ValueError(f"EDW_DUCKDB_THREADS={threads!r}: give a whole number of threads (0 for every core)")
    return Settings(
        data_dir=data_dir,
        warehouse_url=warehouse_url,
        duckdb_memory_limit=os.environ.get("EDW_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT,
        duckdb_threads=int(threads),
    )


def default_date() -> dt.date:
    """Yesterday in Asia/Shanghai: the last complete local day."""
    return dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)


@contextmanager
def temporary_environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) these environment variables for the block; restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_once(path: Path, text: str, mode: int | None = None) -> str:
    """``path``'s text, writing ``text`` there first if the file does not exist yet. Atomic: processes
    starting at once all read the one text that won (create-if-absent by a hard link)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        if mode is not None:
            tmp.chmod(mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


WAREHOUSE_MARK = ".warehouse"  # in the data directory: the warehouse its lake and audit files belong to


class DataDirectoryClaimed(ValueError):
    """The data directory belongs to another warehouse than the one this run writes to."""


def warehouse_identity(url: str, data_dir: Path) -> str | None:
    """The warehouse ``url`` names, without credentials: a DuckDB file relative to the data directory when
    it lies inside it (the directory may move), a Postgres server and database. None for an in-memory one."""
    if url.startswith("duckdb:///"):
        path = url.removeprefix("duckdb:///")
        if path == ":memory:":
            return None
        resolved = Path(path).resolve()
        try:
            return f"duckdb:///./{resolved.relative_to(data_dir.resolve())}"
        except ValueError:
            return f"duckdb:///{resolved}"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"postgresql://{host}:{parts.port or 5432}{parts.path or '/'}"


def claim_data_directory(config: Settings | None = None) -> None:
    """Make sure the data directory belongs to the warehouse this run writes to, claiming it on first use.

    A data directory holds one warehouse's lake, audit trail and validation results: a second warehouse
    sharing it (``make run`` on DuckDB, then with EDW_WAREHOUSE_URL pointing at Postgres) would land its
    batches beside the first's and confuse every replay. Raises ``DataDirectoryClaimed`` with the way out."""
    config = config or settings()
    identity = warehouse_identity(config.warehouse_url, config.data_dir)
    if identity is None:
        return
    mark = config.data_dir / WAREHOUSE_MARK
    owner = write_once(mark, identity)
    if owner != identity:
        raise DataDirectoryClaimed(
            f"the data directory {config.data_dir} belongs to the warehouse {owner} (recorded in {mark}), not "
            f"to {identity} that this run writes to; nothing was changed. Give each warehouse its own data "
            f"directory (EDW_DATA_DIR=... for this one), or, if that warehouse moved here, delete {mark}"
        )
