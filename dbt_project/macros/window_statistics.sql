{# Helpers of the power models: numbers of the seeds read when a model runs, and the session settings of
   the models that aggregate many rows. #}

{# A number of the seed anomaly_thresholds (rule, parameter), read when the model runs, for SQL that
   needs a constant (a window's length in a frame, a date range). Fails the model when the seed lacks the
   row, or is not loaded when a model is built. While dbt parses, when it only compiles (docs generate)
   before the seed is loaded, and in unit tests (whose seeds are fixtures), `placeholder` stands in: pass
   the seed's own value. #}
{% macro seed_parameter(seed_name, rule, parameter, placeholder=0.5) -%}
    {%- set seed = ref(seed_name) -%}
    {%- if not execute or model.resource_type == 'unit_test' or seed.schema is none -%}
        {{ return(placeholder) }}
    {%- endif -%}
    {%- if adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.identifier) is none -%}
        {%- if flags.WHICH in ('run', 'build') -%}
            {{ exceptions.raise_compiler_error("seed " ~ seed_name ~ " is not loaded in " ~ seed.schema ~ ": run dbt seed (or edw build) first") }}
        {%- endif -%}
        {{ return(placeholder) }}
    {%- endif -%}
    {%- set query -%}
        select max(value) from {{ seed }} where rule = '{{ rule }}' and parameter = '{{ parameter }}'
    {%- endset -%}
    {%- set value = run_query(query).rows[0][0] -%}
    {%- if value is none -%}
        {{ exceptions.raise_compiler_error("seed " ~ seed_name ~ " has no value for rule " ~ rule ~ ", parameter " ~ parameter ~ ": add the row to dbt_project/seeds/" ~ seed_name ~ ".csv") }}
    {%- endif -%}
    {{ return(value | float) }}
{%- endmacro %}

{# Pre-hook of the models that aggregate or join many rows (the power baselines, the risk points): on Postgres,
   no nested-loop joins: the planner, misled by the build dates' filters into
   expecting a few readings, joined a day's readings to the enterprises' 700 profiles row by row (68 s for
   the sequenced readings of 12 days at scale 0.05, 4 s as a hash join); the risk points likewise joined
   every enterprise-day to the registry row by row (457 M join-filter comparisons: 40 s for a full-scale
   day, 3.2 s as a hash join). hash_joins: no merge joins either (the scored readings: a day's readings
   behind a common table expression look like a few dozen rows, so the planner sorted 1.2 M of them three
   times to merge-join them with the day tables: 22 s of a quarter-scale build's 46; as hash joins on the
   day tables, 10 s; the meter days: a day's readings merge-joined to its grid of 96 slots after sorting
   both, 25 s for 2.8 M readings, 18 s as a hash join). For this transaction only. Nothing elsewhere. Memory
   for sorts and hashes and JIT are every model's (postgres_session_settings, session_settings.sql). #}
{% macro window_query_settings(hash_joins=false) -%}
    {{ return(adapter.dispatch('window_query_settings', 'emergency_dw')(hash_joins)) }}
{%- endmacro %}

{% macro default__window_query_settings(hash_joins=false) -%}
{%- endmacro %}

{% macro postgres__window_query_settings(hash_joins=false) -%}
    set local enable_nestloop = off
    {%- if hash_joins %}; set local enable_mergejoin = off{% endif %}
{%- endmacro %}

{# Post-hook of the power models on Postgres: fresh planner statistics for the table just built (its
   rows came by the thousands; without them the next model's joins are planned as if it were empty).
   Not of its array columns (a day's 96 loads): no query filters or joins on them, and their element
   statistics were most of the time of an analyze (a quarter-scale daily build's meter days: 0.8 s).
   Nothing on DuckDB, which keeps its statistics as it writes. #}
{% macro analyze_table() -%}
    {{ return(adapter.dispatch('analyze_table', 'emergency_dw')()) }}
{%- endmacro %}

{% macro default__analyze_table() -%}
{%- endmacro %}

{% macro postgres__analyze_table() -%}
    {%- set columns = adapter.get_columns_in_relation(this) -%}
    {%- set analyzed = [] -%}
    {%- for column in columns if column.dtype | upper != 'ARRAY' and not column.dtype.endswith('[]') -%}
        {%- do analyzed.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    analyze {{ this }}
    {%- if analyzed and analyzed | length < columns | length %} ({{ analyzed | join(', ') }}){% endif %}
{%- endmacro %}

{# `not materialized` on Postgres, for a CTE a model reads several times that is cheaper to read again from
   its tables than to store: Postgres stores such a CTE and then plans every join on it with default
   estimates (no statistics), hashing a day of readings it takes for 13 rows; read again, its index scan
   and its joins are estimated from the tables' statistics. Nothing on DuckDB, which plans CTEs itself. #}
{% macro inlined() -%}
    {{ return(adapter.dispatch('inlined', 'emergency_dw')()) }}
{%- endmacro %}

{% macro default__inlined() -%}
{%- endmacro %}

{% macro postgres__inlined() -%}
    not materialized
{%- endmacro %}
