{#- Grants follow the relations (DESIGN section 8). dbt_project.yml gives the marts their readers as dbt
    `grants` (vars.reader_roles). Roles belong to the Postgres cluster (roles.sql creates them), not to the
    project, and a grant to a role that does not exist fails: so each relation is granted, as it is built,
    to those of its readers that exist, with USAGE on its schema (a SELECT grant reads nothing without it).
    `edw build` says once which readers are missing and how to create them. DuckDB has no roles. -#}

{# dbt's apply_grants, given only the grantees that exist (none: nothing granted, nothing revoked), after
   USAGE on the relation's schema for them. #}
{% macro postgres__apply_grants(relation, grant_config, should_revoke=True) %}
    {%- if not grant_config -%}{{ return(none) }}{%- endif -%}
    {%- set existing = existing_roles(grant_config.values() | sum(start=[])) -%}
    {%- set granted = {} -%}
    {%- for privilege, grantees in grant_config.items() -%}
        {%- set present = grantees | select('in', existing) | list -%}
        {%- if present -%}{%- do granted.update({privilege: present}) -%}{%- endif -%}
        {%- set missing = grantees | reject('in', existing) | list -%}
        {%- if missing -%}
            {%- do log("not granting " ~ privilege ~ " on " ~ relation.render() ~ " to " ~ missing | join(", ")
                ~ ": no such role in this cluster (plugins/emergency_dw/warehouse/roles.sql creates them)") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do grant_schema_usage(relation.schema, existing) -%}
    {%- do dbt.default__apply_grants(relation, granted, should_revoke) -%}
{% endmacro %}


{# Those of `roles` that exist in the cluster. #}
{% macro existing_roles(roles) %}
    {%- if not roles or not execute -%}{{ return([]) }}{%- endif -%}
    {%- set found = run_query(
        "select rolname from pg_roles where rolname in (" ~ quoted_literals(roles) ~ ") order by rolname"
    ) -%}
    {{ return(found.columns[0].values() | list) }}
{% endmacro %}


{# USAGE on `schema` for those of `roles` that lack it. Concurrent GRANTs on one schema fail ("tuple
   concurrently updated"), and models are built on several threads: the grant holds an advisory lock of its
   own until the model's transaction ends. #}
{% macro grant_schema_usage(schema, roles) %}
    {%- if not roles -%}{{ return(none) }}{%- endif -%}
    {%- set lacking = run_query(
        "select r from unnest(array[" ~ quoted_literals(roles) ~ "]) as r where not has_schema_privilege(r, "
        ~ quoted_literals([schema]) ~ ", 'usage') order by r"
    ).columns[0].values() | list -%}
    {%- if lacking -%}
        {%- call statement('grant_schema_usage') -%}
            select pg_advisory_xact_lock(hashtext('emergency_dw grant_schema_usage'));
            grant usage on schema {{ adapter.quote(schema) }} to
            {%- for role in lacking %} {{ adapter.quote(role) }}{{ "," if not loop.last }}{% endfor %}
        {%- endcall -%}
    {%- endif -%}
{% endmacro %}


{# `values` as a comma-separated list of SQL string literals (they come from the project, not from data). #}
{% macro quoted_literals(values) %}
    {%- set literals = [] -%}
    {%- for value in values | unique -%}
        {%- do literals.append("'" ~ value | replace("'", "''") ~ "'") -%}
    {%- endfor -%}
    {{ return(literals | join(", ")) }}
{% endmacro %}


{# DuckDB has no roles: the grants are Postgres's, and there is nothing to grant or to warn about
   (dbt-duckdb would warn on every build that it does not support them). #}
{% macro duckdb__apply_grants(relation, grant_config, should_revoke=True) %}
{% endmacro %}
