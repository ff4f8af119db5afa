"""Run dbt (the `warehouse__build` step) against the warehouse named by ``EDW_WAREHOUSE_URL``."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .config import settings, temporary_environment

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


@dataclass
class DbtRun:
    success: bool
    command: list[str]
    results: list[dict]  # node, status, seconds, message
    error: str | None = None


PII_SALT_ENV = "EDW_PII_SALT"


def pii_salt() -> str:
    """The salt of the hashes that replace personal data in staging: ``EDW_PII_SALT``, else (the embedded
    default) a random one made once for the data directory and kept in ``$EDW_DATA_DIR/.pii_salt``.

    Never a value from the repository: with a known salt, a phone number's hash is reversed by hashing
    the few billion possible numbers. Keep the salt (or the file) to keep hashes stable across builds."""
    value = (os.environ.get(PII_SALT_ENV) or "").strip()
    if value:
        return value
    path = settings().data_dir / ".pii_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".pii_salt.{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic create-if-absent: concurrent first runs agree on one salt
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


def dbt_environment(warehouse_url: str | None = None) -> dict[str, str]:
    """Environment for dbt's profiles.yml, derived from the warehouse URL (DuckDB file or Postgres)."""
    url = warehouse_url or settings().warehouse_url
    env = {
        "DBT_PROFILES_DIR": str(DBT_PROJECT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
        "DBT_LOG_PATH": str(settings().data_dir / "dbt" / "logs"),
        "DBT_TARGET_PATH": str(settings().data_dir / "dbt" / "target"),
        PII_SALT_ENV: pii_salt(),
    }
    if url.startswith("duckdb:///"):
        config = settings()
        env.update(
            EDW_DBT_TARGET="duckdb",
            EDW_DUCKDB_PATH=url.removeprefix("duckdb:///"),
            EDW_DUCKDB_MEMORY_LIMIT=config.duckdb_memory_limit,
        )
    elif url.startswith(("postgresql://", "postgres://")):
        parts = urlparse(url)
        env.update(
            EDW_DBT_TARGET="postgres",
            EDW_PG_HOST=parts.hostname or "127.0.0.1",
            EDW_PG_PORT=str(parts.port or 5432),
            EDW_PG_USER=unquote(parts.username or "postgres"),
            EDW_PG_PASSWORD=unquote(parts.password or ""),
            EDW_PG_DATABASE=(parts.path or "/postgres").lstrip("/") or "postgres",
        )
    else:
        raise ValueError(f"EDW_WAREHOUSE_URL={url!r}: dbt runs on duckdb:///FILE or postgresql://... only")
    return env


def run_dbt(args: list[str], warehouse_url: str | None = None) -> DbtRun:
    """``dbt <args>`` in this process (dbtRunner), on the project in ``dbt_project/``."""
    from dbt.cli.main import dbtRunner

    command = [*args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)]
    with temporary_environment(dbt_environment(warehouse_url)):
        outcome = dbtRunner().invoke(command)
    results = []
    for r in getattr(outcome.result, "results", None) or []:
        results.append(
            {
                "node": getattr(r.node, "unique_id", str(r.node)),
                "status": str(r.status),
                "seconds": float(getattr(r, "execution_time", 0.0) or 0.0),
                "message": r.message,
            }
        )
    error = str(outcome.exception) if outcome.exception else None
    return DbtRun(bool(outcome.success), command, results, error)
