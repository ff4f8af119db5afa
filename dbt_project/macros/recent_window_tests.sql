{# Generic tests for the big tables (a day of power readings is 1.38 M rows at full scale): they check what a
   build has just written or loaded, not the whole history, so a daily build's tests do not grow with it.
   - *_in_built_dates (incremental models with _built_at, the start of the dbt invocation that built a row):
     every row of the dates the model's last build wrote, however old (a past week loaded late is checked
     when it is built; a row the build kept beside one it wrote is checked with it);
   - unique_combination_in_recent_days (staging views of the readings, which have no build): the last days
     before the latest event time. #}

{#- Where the warehouse itself enforces the combination (a valid unique index on some of its columns: the
    power tables on Postgres), it cannot hold a duplicate and the test reads nothing (the condition is a
    one-time filter: a full-scale daily build's two key tests took 15 s of scans and sorts on Postgres);
    without such an index (DuckDB, a view, an index dropped) it reads the dates built. -#}
{% test unique_combination_in_built_dates(model, combination_of_columns, date_column) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where not {{ enforced_unique(model, combination_of_columns) }}
    and {{ in_dates_last_built(model, date_column) }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test not_null_in_built_dates(model, column_name, date_column) %}
select {{ column_name }}
from {{ model }}
where {{ in_dates_last_built(model, date_column) }}
    and {{ column_name }} is null
{% endtest %}

{#- as dbt's accepted_values (a null is not judged), in the dates built -#}
{% test accepted_values_in_built_dates(model, column_name, values, date_column) %}
select {{ column_name }} as value_field, count(*) as n_records
from {{ model }}
where {{ in_dates_last_built(model, date_column) }}
    and {{ column_name }} not in ({% for value in values %}'{{ value }}'{{ ', ' if not loop.last }}{% endfor %})
group by {{ column_name }}
{% endtest %}

{#- The dates of `model` its last build wrote rows of (_built_at is the same for every row of one build; on
    Postgres its index finds them). -#}
{% macro in_dates_last_built(model, date_column) -%}
{{ date_column }} in (
        select distinct built.{{ date_column }}
        from {{ model }} as built
        where built._built_at = (select max(_built_at) from {{ model }})
    )
{%- endmacro %}

{% test unique_combination_in_recent_days(model, combination_of_columns, time_column, days=1, latest_from=none) %}
{#- time_column: a stored timestamp (the last days + 1 of it, so the local days are covered), by which the
    warehouse skips old blocks and partitions.
    latest_from: the table a view passes time_column through from, unfiltered, to read its latest value
    from: Postgres plans a view written as CTEs as a subquery it cannot see into, so max() over the view
    scans every partition (2.2 s at 9 days of power readings, growing by the day) where the table's index
    answers in a millisecond; the rows checked are still read through the view (the condition reaches the
    table's partitions). -#}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where not {{ enforced_unique(model, combination_of_columns) }}
    and {{ time_column }} >= (select max({{ time_column }}) from {{ latest_from or model }}) - interval '{{ days + 1 }} days'
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


{#- The raw table of a re-delivered feed (its staging view ranks every version ever loaded, so a test of
    the view costs the whole history): the rows of its latest loads, those loaded within `days` of the
    newest (a backfill's pass loads its days within minutes of each other), found by the load-time index
    on Postgres's big raw tables. -#}
{% test not_null_in_latest_loads(model, column_name, days=1) %}
{%- if raw_table_exists(model) %}
select {{ column_name }}
from {{ model }}
where {{ in_latest_loads(model, days) }}
    and {{ column_name }} is null
{%- else %}
{{ nothing_loaded(column_name) }}
{%- endif %}
{% endtest %}

{#- as dbt's relationships (a null is not judged), on the rows of the latest loads -#}
{% test relationships_in_latest_loads(model, column_name, to, field, days=1) %}
{%- if raw_table_exists(model) %}
select {{ column_name }}
from {{ model }}
where {{ in_latest_loads(model, days) }}
    and {{ column_name }} is not null
    and {{ column_name }} not in (select {{ field }} from {{ to }} where {{ field }} is not null)
{%- else %}
{{ nothing_loaded(column_name) }}
{%- endif %}
{% endtest %}

{% macro in_latest_loads(model, days) -%}
_loaded_at >= (select max(_loaded_at) from {{ model }}) - interval '{{ days }} days'
{%- endmacro %}

{#- A raw table is created by its feed's first batch, or empty by the build (ensure_raw_tables); a dbt build
    run by hand on a warehouse where a feed never loaded (`--select` of some marts) may select that feed's
    raw-table tests without the table: nothing loaded, nothing to test. True for a subquery. -#}
{% macro raw_table_exists(model) -%}
    {%- if execute and model.identifier is defined -%}
        {{ return(load_relation(model) is not none) }}
    {%- endif -%}
    {{ return(true) }}
{%- endmacro %}

{% macro nothing_loaded(column_name) -%}
select null as {{ column_name }} where 1 = 0
{%- endmacro %}
