"""Run dbt (the `warehouse__build` step) against the warehouse named by ``EDW_WAREHOUSE_URL``.

Before dbt runs, :func:`prepare_raw_tables` creates, empty, every catalog feed's raw table that does not
exist: a warehouse where only some feeds were ever ingested (a county starting with its 110/119/120 calls)
still builds, its other marts empty until their feeds load. On Postgres it also grants the pipeline's
readers (the auditor: audit) what they lack, and :func:`missing_readers` says which readers' roles do not
exist yet (dbt grants each mart to those that exist as it builds it: dbt_project/macros/grants.sql).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .config import settings, temporary_environment
from .pii import PII_SALT_ENV, pii_salt

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
# dbt's unit tests check the models' logic on fixed inputs: they belong to development and CI (`make test`
# runs them), not to every production build, where they would cost a node each and prove nothing new.
PRODUCTION_BUILD = ("build", "--exclude-resource-type", "unit_test")


@dataclass
class RawTables:
    created: list[str]  # raw tables created empty for this build
    never_loaded: list[str]  # catalog feeds without a loaded batch: their marts hold nothing of them
    feeds: int  # feeds in the catalog


def prepare_raw_tables(warehouse_url: str | None = None) -> RawTables:
    """Create the missing ``raw.<feed>`` relations of the catalog, empty, and say which feeds never loaded."""
    from .catalog import all_feeds
    from .pipeline.tables import ensure_raw_tables, grant_pipeline_readers, loaded_feeds
    from .warehouse import connect
    from .warehouse.grants import reader_roles

    feeds = list(all_feeds())
    warehouse = connect(warehouse_url or settings().warehouse_url)
    try:
        created = ensure_raw_tables(warehouse, feeds)
        loaded = loaded_feeds(warehouse)
        if warehouse.dialect == "postgres":  # roles created since the last load get what they read
            grant_pipeline_readers(warehouse, feeds, reader_roles())
    finally:
        warehouse.close()
    return RawTables(created, [f.name for f in feeds if f.name not in loaded], len(feeds))


def describe_raw_tables(prepared: RawTables) -> list[str]:
    """What the build should tell its reader about feeds never loaded (empty when every feed loaded)."""
    lines = []
    if prepared.never_loaded:
        lines.append(
            f"{len(prepared.never_loaded)} of {prepared.feeds} feeds never loaded (their marts hold nothing of "
            f"them until a batch loads: edw ingest FEED --date D): {', '.join(prepared.never_loaded)}"
        )
    if prepared.created:
        lines.append(f"raw tables created empty from the catalog: {', '.join(prepared.created)}")
    return lines


def missing_readers(warehouse_url: str | None = None) -> str | None:
    """On Postgres, what the build should tell its reader when roles of dbt_project.yml's ``reader_roles``
    do not exist in the cluster (the build grants only roles that exist); None when all exist, and on DuckDB."""
    url = warehouse_url or settings().warehouse_url
    if not url.startswith(("postgresql://", "postgres://")):
        return None
    from .warehouse import connect
    from .warehouse.grants import missing_readers_notice

    warehouse = connect(url)
    try:
        return missing_readers_notice(warehouse)
    finally:
        warehouse.close()


# dbt's node statuses that count as passed (a warning is reported, not failed).
PASSED_STATUSES = ("success", "pass", "warn", "no-op")


@dataclass
class DbtRun:
    success: bool
    command: list[str]
    results: list[dict]  # node, status, seconds, message
    error: str | None = None

    @property
    def failed(self) -> list[dict]:
        """The nodes that did not pass: errors, test failures and nodes skipped because one upstream failed."""
        return [r for r in self.results if r["status"] not in PASSED_STATUSES]


def dbt_environment(warehouse_url: str | None = None) -> dict[str, str]:
    """Environment for dbt's profiles.yml, derived from the warehouse URL (DuckDB file or Postgres): the
    one given, else ``EDW_TRANSFORM_WAREHOUSE_URL`` (dbt's own role), else ``EDW_WAREHOUSE_URL``."""
    url = warehouse_url or settings().transform_url
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
        raise ValueError(
            f"warehouse URL {url!r} (EDW_TRANSFORM_WAREHOUSE_URL, else EDW_WAREHOUSE_URL): dbt runs on "
            "duckdb:///FILE or postgresql://... only"
        )
    return env


# dbt parses the project (about 10 s) at an invocation whose warehouse its partial parse has not seen: the
# parse is keyed on the connection, so each fresh warehouse costs a full parse. A process that builds several
# warehouses of one kind (the benchmark, the tests) parses once per what the parse depends on: the target,
# the database name (relations are rendered with it), the personal-data salt, --vars and the project's files.
_PARSED: dict[tuple, object] = {}
_PARSED_KEPT = 4  # manifests of a process (about 20 MB each): the latest
_PARSING_COMMANDS = {"build", "run", "test", "seed", "compile", "docs", "ls", "list", "show"}


def _project_state() -> str:
    """A fingerprint of the dbt project's files (path, size and mtime; dbt's output and logs left out)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(DBT_PROJECT.rglob("*")):
        relative = path.relative_to(DBT_PROJECT)
        if relative.parts[0] in ("target", "logs", "dbt_packages") or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _vars_of(args: list[str]) -> list[str]:
    return ["--vars", args[args.index("--vars") + 1]] if "--vars" in args else []


def _parse_key(args: list[str], env: dict[str, str]) -> tuple | None:
    """What a parse of the project for ``dbt <args>`` in ``env`` depends on; None for commands that do not
    read a parsed project (parse, debug, deps, clean) or choose their own."""
    if not args or args[0] not in _PARSING_COMMANDS or "--state" in args:
        return None
    target = env["EDW_DBT_TARGET"]
    database = Path(env["EDW_DUCKDB_PATH"]).stem if target == "duckdb" else env["EDW_PG_DATABASE"]
    cli_vars = args[args.index("--vars") + 1] if "--vars" in args else ""
    return (target, database, env.get(PII_SALT_ENV), cli_vars, _project_state())


def _parsed_project(key: tuple | None, env: dict[str, str], args: list[str]):
    """The manifest this process parsed for ``key`` (written to this warehouse's target directory, where
    Cosmos and the reports read it), or None: dbt then parses as usual, and its manifest is kept."""
    if key is None or key not in _PARSED:
        return None
    from dbt.parser.manifest import write_manifest

    manifest = _PARSED[key]
    write_manifest(manifest, env["DBT_TARGET_PATH"])
    return manifest


def _keep_parsed(key: tuple | None, outcome) -> None:
    from dbt.contracts.graph.manifest import Manifest

    if key is None or not isinstance(getattr(outcome, "result", None), Manifest):
        return
    _PARSED[key] = outcome.result
    while len(_PARSED) > _PARSED_KEPT:
        _PARSED.pop(next(iter(_PARSED)))


def run_dbt(
    args: list[str],
    warehouse_url: str | None = None,
    quiet: bool = False,
    progress: Callable[[int, str], None] | None = None,
) -> DbtRun:
    """``dbt <args>`` in this process (dbtRunner), on the project in ``dbt_project/``.

    ``quiet``: dbt prints only errors (``--quiet``); its full log stays in ``$EDW_DATA_DIR/dbt/logs/dbt.log``.
    ``progress(done, node)`` is called as each node finishes (a model built, a test run)."""
    from dbt.cli.main import dbtRunner

    command = [*args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)]
    if quiet:
        command.append("--quiet")
    finished = 0

    def on_event(event) -> None:
        nonlocal finished
        if progress is not None and event.info.name == "NodeFinished":
            finished += 1
            progress(finished, event.data.node_info.unique_id)

    env = dbt_environment(warehouse_url)
    key = _parse_key(args, env)
    with temporary_environment(env):
        manifest = _parsed_project(key, env, args)
        if manifest is None and key is not None:  # parse once, as its own step, and keep the manifest
            options = ["--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT), "--quiet"]
            parsed = dbtRunner().invoke(["parse", *options, *_vars_of(args)])  # its errors: the run's own
            _keep_parsed(key, parsed)
            manifest = _PARSED.get(key)
        outcome = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(command)
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
