"""Who reads what in the warehouse (DESIGN section 8), and the grants that follow the relations on Postgres.

The readers of each schema are written once, in dbt_project.yml (``vars: reader_roles``): dbt grants what it
builds in ``marts`` as it builds it (its ``grants`` config, macros/grants.sql), and the pipeline grants what
it creates in ``audit`` (:func:`grant_readers`: the audit tables, and the masked quarantine views). Roles
belong to the cluster, not to a database: roles.sql creates them once, and a database where it never ran
still gets its grants from the load and the build. Only roles that exist are granted, so a warehouse whose
roles are not created yet still loads and builds; :func:`missing_readers_notice` says so, once per build.
DuckDB has no roles: nothing here does anything there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from emergency_dw.warehouse import qualified, quote_ident

log = logging.getLogger(__name__)

DBT_PROJECT_YML = Path(__file__).resolve().parents[3] / "dbt_project" / "dbt_project.yml"
READERS_VAR = "reader_roles"
CREATE_ROLES = (
    "Create the roles once per cluster with roles.sql, as a superuser: psql -U postgres -d <warehouse database> "
    "-v loader_password=... -v transformer_password=... -v bi_reader_password=... -v auditor_password=... "
    '-f plugins/emergency_dw/warehouse/roles.sql (README, "Roles on Postgres"), then run edw build again: '
    "it grants every role that exists what it reads."
)


def reader_roles(project_yml: Path | None = None) -> dict[str, tuple[str, ...]]:
    """The roles that read each schema: ``vars.reader_roles`` of dbt_project.yml (schema: [role, ...])."""
    import yaml

    project_yml = project_yml or DBT_PROJECT_YML
    project = yaml.safe_load(project_yml.read_text(encoding="utf-8")) or {}
    readers = (project.get("vars") or {}).get(READERS_VAR) or {}
    if not isinstance(readers, Mapping) or not all(isinstance(r, list) for r in readers.values()):
        raise ValueError(f"{project_yml}: vars.{READERS_VAR} must map each schema to a list of role names")
    return {str(schema): tuple(str(role) for role in roles) for schema, roles in readers.items()}


def existing_roles(warehouse, roles: Iterable[str]) -> list[str]:
    """Those of ``roles`` that exist in the Postgres cluster (none on DuckDB), in their given order."""
    wanted = list(dict.fromkeys(roles))
    if warehouse.dialect != "postgres" or not wanted:
        return []
    rows = warehouse.query(
        "select rolname from pg_roles where rolname = any(string_to_array(?, ','))", [",".join(wanted)]
    ).to_pylist()
    found = {r["rolname"] for r in rows}
    return [role for role in wanted if role in found]


def _lacking(warehouse, schema: str, relations: Sequence[str], roles: Sequence[str]) -> list[str]:
    """The grants of ``roles`` on ``schema`` (USAGE) and its ``relations`` (SELECT) not yet given, as SQL
    (none for a schema, or relations, not created yet)."""
    if not warehouse.query("select 1 as found from pg_namespace where nspname = ?", [schema]).num_rows:
        return []
    rows = warehouse.query(
        "select r as role, null as relation from unnest(string_to_array(?, ',')) as r "
        "where not has_schema_privilege(r, ?, 'usage') "
        "union all select r, t from unnest(string_to_array(?, ',')) as r, unnest(string_to_array(?, ',')) as t "
        "where to_regclass(quote_ident(?) || '.' || quote_ident(t)) is not null "
        "and not has_table_privilege(r, (quote_ident(?) || '.' || quote_ident(t)), 'select')",
        [",".join(roles), schema, ",".join(roles), ",".join(relations), schema, schema],
    ).to_pylist()
    statements = []
    for row in rows:
        on = (
            f"schema {quote_ident(schema)}" if row["relation"] is None else qualified(schema, row["relation"])
        )
        verb = "usage" if row["relation"] is None else "select"
        statements.append(f"grant {verb} on {on} to {quote_ident(row['role'])}")
    return statements


def grant_readers(warehouse, schema: str, relations: Sequence[str], roles: Sequence[str]) -> list[str]:
    """Postgres: give those of ``roles`` that exist USAGE on ``schema`` and SELECT on its ``relations``,
    where they lack it; returns the grants made (none when every grant is in place, on DuckDB, or when
    no role exists). The grants are made under the backend's DDL lock, as concurrent loads may find them
    missing at once (concurrent GRANTs on one object fail with "tuple concurrently updated")."""
    present = existing_roles(warehouse, roles)
    if not present or not _lacking(warehouse, schema, relations, present):
        return []
    with warehouse.transaction() as tx:
        warehouse.lock_ddl()
        statements = _lacking(warehouse, schema, relations, present)  # again, under the lock
        for statement in statements:
            tx.execute(statement)
    return statements


def missing_readers_notice(warehouse, readers: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """On Postgres, what to tell the user when readers of ``reader_roles`` do not exist (nobody but the
    owner can read what they would read); None when every one exists, and on DuckDB."""
    if warehouse.dialect != "postgres":
        return None
    readers = reader_roles() if readers is None else readers
    wanted = list(dict.fromkeys(role for roles in readers.values() for role in roles))
    present = set(existing_roles(warehouse, wanted))
    missing = [role for role in wanted if role not in present]
    if not missing:
        return None
    schemas = ", ".join(sorted(schema for schema, roles in readers.items() if set(roles) & set(missing)))
    if not present:
        return (
            f"No reader role exists in this Postgres cluster ({', '.join(missing)}): only the owner of the "
            f"warehouse can read {schemas}. {CREATE_ROLES}"
        )
    return (
        f"Role(s) {', '.join(missing)} do not exist in this Postgres cluster: they cannot read {schemas} "
        f"(the roles that exist are granted). {CREATE_ROLES}"
    )
