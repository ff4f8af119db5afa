{# Generic tests for the big incremental tables (a day of power readings is 1.38 M rows at full scale):
   they check the latest `days` local days before the latest `date_column` value (the rows a daily run
   has just rebuilt; older days were checked when they were built), so a daily build's tests do not
   grow with history. #}

{#- Where the warehouse itself enforces the combination (a valid unique index on some of its columns: the
    power tables on Postgres), it cannot hold a duplicate and the test reads nothing (the condition is a
    one-time filter: a full-scale daily build's two key tests took 15 s of scans and sorts on Postgres);
    without such an index (DuckDB, a view, an index dropped) it scans the recent days. -#}
{% test unique_combination_in_recent_days(model, combination_of_columns, date_column=none, days=1, time_column=none) %}
{#- time_column: a stored timestamp (the last days + 1 of it, so the local days are covered); cheaper
    than a date computed in a view, as the warehouse can skip old blocks by it -#}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where not {{ enforced_unique(model, combination_of_columns) }}
{%- if time_column %}
    and {{ time_column }} >= (select max({{ time_column }}) from {{ model }}) - interval '{{ days + 1 }} days'
{%- else %}
    and {{ date_column }} >= (select max({{ date_column }}) from {{ model }}) - {{ days }}
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- A condition: true when the warehouse enforces that no two rows of `relation` share `columns` (a valid,
    whole-table unique index on some of them). -#}
{% macro enforced_unique(relation, columns) -%}
    {{ return(adapter.dispatch('enforced_unique', 'emergency_dw')(relation, columns)) }}
{%- endmacro %}

{% macro default__enforced_unique(relation, columns) -%}
    false
{%- endmacro %}

{% macro postgres__enforced_unique(relation, columns) -%}
    {%- if relation.include is not defined -%}
    false  {#- a subquery (a test's `where`): nothing enforces it -#}
    {%- else -%}
    exists (
        select 1
        from pg_catalog.pg_index as unique_index
        where unique_index.indrelid = to_regclass('{{ relation.include(database=false) }}')
            and unique_index.indisunique
            and unique_index.indisvalid
            and unique_index.indpred is null
            and unique_index.indexprs is null
            and not exists (
                select 1
                from pg_catalog.pg_attribute as indexed
                where indexed.attrelid = unique_index.indrelid
                    and indexed.attnum = any(unique_index.indkey)
                    and indexed.attname not in ('{{ columns | join("', '") }}')
            )
    )
    {%- endif -%}
{%- endmacro %}

{% test not_null_in_recent_days(model, column_name, date_column, days=1) %}
select {{ column_name }}
from {{ model }}
where {{ date_column }} >= (select max({{ date_column }}) from {{ model }}) - {{ days }}
    and {{ column_name }} is null
{% endtest %}
