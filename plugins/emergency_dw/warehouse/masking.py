"""Views through which an auditor reads quarantined rows without seeing personal data (DESIGN section 8).

Quarantine keeps each failing row as delivered (``_record``, a JSON object keyed by the source's
headers) with the reasons it failed (``_errors``, messages that quote the offending value). For a
table whose records carry personal fields, :func:`ensure_masked_view` creates a view that shows every
row and reason, but with those fields' values replaced by ``***`` (a missing or null value stays null,
so "required value missing" still reads right) and every reason about them reduced to its column.
On Postgres the view is granted to the roles given (the readers of ``audit``) that exist; DuckDB has no roles,
and gets the same view (its file's readers read the view, and the quarantine table itself holds personal
fields only as salted hashes: see ``pipeline/split.py``). The view has the quarantine table's columns, in
its order, as the caller declares them (``pipeline/tables.py``'s ``QUARANTINE_COLUMNS``).

Identifiers and literals are quoted here (a view cannot take bind parameters); they come from the
catalog, never from delivered data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from emergency_dw.warehouse import qualified, quote_ident
from emergency_dw.warehouse.grants import existing_roles

MASK = "***"


def quote_literal(text: str) -> str:
    """``text`` as a standard SQL string literal (quotes doubled; standard_conforming_strings is on)."""
    if "\x00" in text:
        raise ValueError(f"invalid SQL literal {text!r}")
    return "'" + text.replace("'", "''") + "'"


def masked_view_sql(
    source_schema: str,
    source_table: str,
    view_schema: str,
    view_name: str,
    columns: Sequence[str],
    record_keys: Sequence[str],
    error_columns: Sequence[str],
) -> str:
    """``create or replace view`` of the quarantine table with ``record_keys`` of ``_record`` masked and
    the ``_errors`` messages about ``error_columns`` (``"<column>: ..."``) reduced to the column name."""
    mask = f"to_jsonb({quote_literal(MASK)}::text)"
    record = "_record"
    for key in record_keys:
        k = quote_literal(key)
        record = (
            f"({record} || case when jsonb_typeof(_record -> {k}) is distinct from 'null' "
            f"and jsonb_exists(_record, {k}) then jsonb_build_object({k}, {mask}) else '{{}}'::jsonb end)"
        )
    personal = " or ".join(f"starts_with(e, {quote_literal(c + ':')})" for c in error_columns) or "false"
    errors = (
        "case when _errors is null then null else ("
        f"select coalesce(jsonb_agg(case when {personal} then to_jsonb(split_part(e, ':', 1) || "
        f"{quote_literal(': ' + MASK + ' (personal data masked)')}) else to_jsonb(e) end order by n), "
        "'[]'::jsonb) from jsonb_array_elements_text(_errors) with ordinality as t(e, n)) end"
    )
    return _view_sql(source_schema, source_table, view_schema, view_name, columns, record, errors)


def duckdb_masked_view_sql(
    source_schema: str,
    source_table: str,
    view_schema: str,
    view_name: str,
    columns: Sequence[str],
    record_keys: Sequence[str],
    error_columns: Sequence[str],
) -> str:
    """``masked_view_sql`` in DuckDB's JSON functions."""
    patches = [
        f"case when coalesce(json_type(_record, {quote_literal(_json_path(key))}), 'NULL') <> 'NULL' "
        f"then json_object({quote_literal(key)}, {quote_literal(MASK)}) else '{{}}'::json end"
        for key in record_keys
    ]
    record = f"json_merge_patch(_record, {', '.join(patches)})" if patches else "_record"
    personal = " or ".join(f"starts_with(e, {quote_literal(c + ':')})" for c in error_columns) or "false"
    errors = (
        "case when _errors is null then null else to_json(list_transform(cast(_errors as varchar[]), lambda e: "
        f"case when {personal} then split_part(e, ':', 1) || {quote_literal(': ' + MASK + ' (personal data masked)')} "
        "else e end)) end"
    )
    return _view_sql(source_schema, source_table, view_schema, view_name, columns, record, errors)


def _view_sql(
    source_schema: str,
    source_table: str,
    view_schema: str,
    view_name: str,
    columns: Sequence[str],
    record: str,
    errors: str,
) -> str:
    """The masked view over the quarantine table (``columns``, in order), given the SQL of its masked
    ``_record`` and ``_errors``; every other column is shown as it is."""
    masked = {
        "_errors": f"{errors} as _errors",
        "_record": f"case when _record is null then null else {record} end as _record",
    }
    missing = masked.keys() - set(columns)
    if missing:
        raise ValueError(f"the quarantine table's columns {list(columns)} lack {sorted(missing)}")
    select = ", ".join(masked.get(column, column) for column in columns)
    return (
        f"create or replace view {qualified(view_schema, view_name)} as select {select} "
        f"from {qualified(source_schema, source_table)}"
    )


def _json_path(key: str) -> str:
    """A JSON path naming one top-level key (quoted, so any header works)."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ensure_masked_view(
    warehouse,
    source_schema: str,
    source_table: str,
    view_schema: str,
    view_name: str,
    columns: Sequence[str],
    record_keys: Sequence[str],
    error_columns: Sequence[str],
    readers: Sequence[str],
) -> bool:
    """Create (or bring up to date) the masked view and grant it to ``readers`` that exist; returns
    True when it changed anything. A view already matching (its comment holds the definition's hash)
    is left alone, so concurrent batches do not rewrite it."""
    if warehouse.dialect == "duckdb":
        return _ensure_duckdb_view(
            warehouse,
            duckdb_masked_view_sql(
                source_schema, source_table, view_schema, view_name, columns, record_keys, error_columns
            ),
            source_table,
            view_schema,
            view_name,
        )
    if warehouse.dialect != "postgres":
        return False
    definition = masked_view_sql(
        source_schema, source_table, view_schema, view_name, columns, record_keys, error_columns
    )
    granted = sorted(existing_roles(warehouse, readers))
    signature = json.dumps({"sql": hashlib.sha256(definition.encode()).hexdigest()[:16], "readers": granted})
    comment = f"quarantine.{source_table} with personal fields masked ({MASK}); edw masking {signature}"

    def current() -> str | None:
        return (
            warehouse.query(
                "select obj_description(to_regclass(?), 'pg_class') as d", [qualified(view_schema, view_name)]
            )
            .column(0)[0]
            .as_py()
        )

    if current() == comment:
        return False
    with warehouse.transaction() as tx:
        # concurrent batches of the feed may both find the view out of date: one rewrites it, under the
        # backend's DDL lock; the other then finds it current ("tuple concurrently updated" otherwise)
        warehouse.lock_ddl()
        if current() == comment:
            return False
        tx.execute(definition)
        tx.execute(f"comment on view {qualified(view_schema, view_name)} is {quote_literal(comment)}")
        for role in granted:
            tx.execute(f"grant select on {qualified(view_schema, view_name)} to {quote_ident(role)}")
    return True


def _ensure_duckdb_view(
    warehouse, definition: str, source_table: str, view_schema: str, view_name: str
) -> bool:
    """The DuckDB view, rewritten only when its definition changed (its comment holds the definition's hash)."""
    signature = hashlib.sha256(definition.encode()).hexdigest()[:16]
    comment = f"quarantine.{source_table} with personal fields masked ({MASK}); edw masking {signature}"
    found = warehouse.query(
        "select comment from duckdb_views() where schema_name = ? and view_name = ?", [view_schema, view_name]
    ).to_pylist()
    if found and found[0]["comment"] == comment:
        return False
    with warehouse.transaction() as tx:
        tx.execute(definition)
        tx.execute(f"comment on view {qualified(view_schema, view_name)} is {quote_literal(comment)}")
    return True
