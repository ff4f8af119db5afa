{#- The indexes a model's config declares (`indexes`, dbt-postgres) exist after every build, not only after the
    build that created its table: dbt creates them when it creates the table (a table model each build, an
    incremental one once, or on --full-refresh), so an index added to an incremental model's config later
    would never reach a warehouse built before it. A post-hook of every model (dbt_project.yml): for each
    declared index, an index of the table on exactly those columns (unique where declared, valid, whole
    table) is created if there is none; the name is Postgres's own (table_column_idx), so it never clashes
    with the index of the table a --full-refresh swaps out. Nothing on DuckDB, nor for a model that
    declares no index. -#}
{% macro ensure_indexes() -%}
    {{ return(adapter.dispatch('ensure_indexes', 'emergency_dw')()) }}
{%- endmacro %}

{% macro default__ensure_indexes() -%}
{%- endmacro %}

{% macro postgres__ensure_indexes() -%}
    {%- set indexes = config.get('indexes') or [] -%}
    {%- if indexes and config.get('materialized') in ('table', 'incremental') %}
do $ensure_indexes$
begin
    {%- for index in indexes %}
    {%- set unique = index.get('unique', false) %}
    if not exists (
        select 1
        from pg_catalog.pg_index as declared
        where declared.indrelid = to_regclass('{{ this.include(database=false) }}')
            and declared.indisvalid
            and declared.indpred is null
            and declared.indexprs is null
            {%- if unique %}
            and declared.indisunique
            {%- endif %}
            and array(
                select indexed.attname::text
                from unnest(declared.indkey) with ordinality as key (attnum, position)
                join pg_catalog.pg_attribute as indexed
                    on indexed.attrelid = declared.indrelid and indexed.attnum = key.attnum
                order by key.position
            ) = array['{{ index["columns"] | join("', '") }}']
    ) then
        execute 'create {{ "unique " if unique }}index on {{ this.include(database=false) }} using {{ index.get("type") or "btree" }} ({{ index["columns"] | join(", ") }})';
    end if;
    {%- endfor %}
end
$ensure_indexes$
    {%- endif -%}
{%- endmacro %}
