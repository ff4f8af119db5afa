"""The warehouses the history, city-day and bi stages run on: the embedded DuckDB and a Postgres database
the benchmark makes for itself on the ``--postgres-url`` server (dropped first, dropped again at the end);
which of them a run takes; the figures both have, side by side."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .figures import Figure

WAREHOUSES = ("duckdb", "postgres")
LABELS = {"duckdb": "DuckDB", "postgres": "Postgres"}
# the stages that run on each warehouse asked for (the others: load on Postgres, volume on DuckDB)
WAREHOUSE_STAGES = ("history", "city_day", "bi")
BENCH_DATABASE = "edw_bench_run"
RATIO = "Postgres/DuckDB"


def server_of(url: str) -> str:
    """host:port of a Postgres URL, without credentials."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def database_url(admin_url: str, database: str) -> str:
    """``admin_url`` pointed at another database of its server."""
    import sqlalchemy as sa

    return sa.make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def create_database(admin_url: str, prefix: str) -> str:
    """A new database ``<prefix>_<random>`` on the server of ``admin_url``; its name."""
    import uuid

    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
    finally:
        admin.dispose()
    return name


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` of the server of ``admin_url`` (whoever is connected), if it exists."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    finally:
        admin.dispose()


def postgres_problem(url: str) -> str | None:
    """Why the Postgres at ``url`` cannot be reached (None: it answers)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the user is told it
        cause = getattr(exc, "orig", None) or exc  # the driver's own error, not SQLAlchemy's wrapper
        lines = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {lines[0] if lines else ''}"
    return None


@dataclass
class Plan:
    stages: tuple[str, ...]
    warehouses: tuple[str, ...]
    notes: list[str]  # what the user is told about the choice (a Postgres unreachable, a stage left out)


def plan_run(
    stages: tuple[str, ...],
    stages_given: bool,
    warehouses: tuple[str, ...] | None,
    postgres_url: str,
) -> Plan:
    """The stages and warehouses of a run. Asked for none, the history, city-day and bi stages run on
    both warehouses when the Postgres at ``postgres_url`` answers, else on DuckDB alone (and, the stages
    not given, the load stage, which needs Postgres, is left out); a note says why. A warehouse or a stage
    asked for that needs an unreachable Postgres is an error."""
    on_warehouses = any(s in stages for s in WAREHOUSE_STAGES)
    wanted = tuple(dict.fromkeys(warehouses)) if warehouses else WAREHOUSES
    notes: list[str] = []
    if "scheduler" in stages and "postgres" not in wanted:
        if stages_given:
            raise RuntimeError("the scheduler stage runs on Postgres (Airflow's metadata and the warehouse)")
        stages = tuple(s for s in stages if s != "scheduler")
        notes.append("a run on DuckDB only: the scheduler stage (Airflow on Postgres) is left out")
    needs_postgres = "load" in stages or "scheduler" in stages or (on_warehouses and "postgres" in wanted)
    problem = postgres_problem(postgres_url) if needs_postgres else None
    if problem is not None:
        where = f"the Postgres at {server_of(postgres_url)} (--postgres-url) is unreachable ({problem})"
        if warehouses and "postgres" in warehouses and on_warehouses:
            raise RuntimeError(f"--warehouse postgres: {where}")
        if "load" in stages and stages_given:
            raise RuntimeError(f"the load stage runs on Postgres: {where}")
        if "scheduler" in stages and stages_given:
            raise RuntimeError(f"the scheduler stage runs on Postgres: {where}")
        if "load" in stages:
            stages = tuple(s for s in stages if s != "load")
            notes.append(f"{where}: the load stage is left out")
        if "scheduler" in stages:
            stages = tuple(s for s in stages if s != "scheduler")
            notes.append(f"{where}: the scheduler stage is left out")
        if on_warehouses and "postgres" in wanted:
            wanted = tuple(w for w in wanted if w != "postgres")
            notes.append(f"{where}: the history, city-day and bi stages run on DuckDB only")
    return Plan(stages, wanted if on_warehouses else (), notes)


@contextlib.contextmanager
def bench_database(
    admin_url: str, name: str, keep: bool, progress: Callable[[str], None] | None = None
) -> Iterator[str]:
    """A fresh database ``name`` on the server of ``admin_url`` (dropped first if it exists); its URL.
    Dropped at the end unless ``keep``; either way the user is told."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        with admin.connect() as conn:
            existed = conn.execute(
                sa.text("select 1 from pg_database where datname = :n"), {"n": name}
            ).first()
            conn.execute(sa.text(f"drop database if exists {quoted} with (force)"))
            conn.execute(sa.text(f"create database {quoted}"))
        url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        if progress:
            progress(
                f"postgres: database {name} on {server_of(admin_url)} created"
                + (" (the one a previous run left was dropped first)" if existed else "")
            )
        try:
            yield url
        finally:
            if keep:
                if progress:
                    progress(f"postgres: database {name} on {server_of(admin_url)} kept (--keep-postgres)")
            else:
                with admin.connect() as conn:
                    conn.execute(sa.text(f"drop database if exists {quoted} with (force)"))
                if progress:
                    progress(
                        f"postgres: database {name} on {server_of(admin_url)} dropped "
                        "(--keep-postgres keeps it)"
                    )
    finally:
        admin.dispose()


def reader_url(url: str | None, database: str) -> str | None:
    """``EDW_BI_READER_URL`` (the warehouse as bi_reader sees it) pointed at the benchmark's database."""
    if not url:
        return None
    import sqlalchemy as sa

    return sa.make_url(url).set(database=database).render_as_string(hide_password=False)


@dataclass
class SideBySide:
    name: str
    duckdb: Figure
    postgres: Figure
    ratio: float | None  # Postgres / DuckDB
    target: str  # a line per target: both warehouses' (once when they agree), the ratio's
    met: bool | None
    failed: list[str]  # which of DuckDB, Postgres, ratio missed its target


def ratio_name(name: str) -> str:
    """The figure that holds a figure's Postgres/DuckDB ratio to its own target."""
    return f"{name}: {RATIO}"


def side_by_side(figures: list[Figure]) -> tuple[list[SideBySide], list[Figure]]:
    """The figures both warehouses have (same name), a row each, with their ratio and targets (a
    ``<name>: Postgres/DuckDB`` figure's target joins its row); the other figures, in their order."""
    by_key = {(f.name, f.warehouse): f for f in figures}
    rows: list[SideBySide] = []
    paired: set[int] = set()
    for f in figures:
        if f.warehouse != "duckdb" or (f.name, "postgres") not in by_key:
            continue
        duck, pg = f, by_key[(f.name, "postgres")]
        ratio_figure = next((r for r in figures if r.name == ratio_name(f.name)), None)
        targets: list[str] = []
        if duck.target == pg.target:
            targets += [duck.target] if duck.target else []
        else:
            targets += [f"{LABELS[w.warehouse]} {w.target}" for w in (duck, pg) if w.target]
        judged = [(LABELS["duckdb"], duck.met), (LABELS["postgres"], pg.met)]
        if ratio_figure is not None:
            targets.append(f"ratio {ratio_figure.target}")
            judged.append(("ratio", ratio_figure.met))
            paired.add(id(ratio_figure))
        known = [(label, met) for label, met in judged if met is not None]
        rows.append(
            SideBySide(
                name=f.name,
                duckdb=duck,
                postgres=pg,
                ratio=pg.value / duck.value if duck.value else None,
                target="\n".join(targets),
                met=all(met for _, met in known) if known else None,
                failed=[label for label, met in known if not met],
            )
        )
        paired.update((id(duck), id(pg)))
    return rows, [f for f in figures if id(f) not in paired]
