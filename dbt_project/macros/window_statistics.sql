{# Per-group statistics of the power baselines, written per warehouse for speed (DESIGN section 7).
   Each macro returns a select over `relation` (a CTE name) grouped by `group_columns`. #}

{# Median (continuous: the mean of the two middle values of an even count), median absolute deviation
   from it, and the count of `value_column` per group, as median_value, mad_value and value_count.
   DuckDB: each group's values gathered in one list (a plain aggregate that spills to disk under the
   memory limit), then list_median of the values and of their deviations, row by row. DuckDB's median
   and mad aggregates keep a holistic state per group that does not spill: at full scale (1.38 M
   meter-slots x 28 days) they need more than 2 GB, the list form fits in 1 GB and is faster.
   Postgres: the group's values in one array (hash aggregate, no big sort), then percentile_cont over
   the small array: about 3.5x faster than two percentile_cont passes over the rows, which sort every
   group on disk. #}
{% macro median_and_mad(relation, group_columns, value_column) -%}
    {{ return(adapter.dispatch('median_and_mad', 'emergency_dw')(relation, group_columns, value_column)) }}
{%- endmacro %}

{% macro default__median_and_mad(relation, group_columns, value_column) -%}
    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        median_value,
        list_median(list_transform(group_values, lambda value: abs(value - median_value))) as mad_value,
        value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            group_values,
            list_median(group_values) as median_value,
            len(group_values) as value_count
        from (
            select
                {% for column in group_columns %}{{ column }},
                {% endfor -%}
                list({{ value_column }}) as group_values
            from {{ relation }}
            where {{ value_column }} is not null
            group by {{ group_columns | join(', ') }}
        ) as grouped
    ) as with_median
{%- endmacro %}

{% macro postgres__median_and_mad(relation, group_columns, value_column) -%}
    select
        {% for column in group_columns %}grouped.{{ column }},
        {% endfor -%}
        statistics.median_value,
        statistics.mad_value,
        grouped.value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            array_agg({{ value_column }}) as group_values,
            count({{ value_column }}) as value_count
        from {{ relation }}
        where {{ value_column }} is not null
        group by {{ group_columns | join(', ') }}
    ) as grouped
    cross join lateral (
        select
            middle.median_value,
            (
                select percentile_cont(0.5) within group (order by abs(deviations.value - middle.median_value))
                from unnest(grouped.group_values) as deviations (value)
            ) as mad_value
        from (
            select percentile_cont(0.5) within group (order by group_value.value) as median_value
            from unnest(grouped.group_values) as group_value (value)
        ) as middle
    ) as statistics
{%- endmacro %}

{# The continuous percentile `fraction` (a number known when the model runs, e.g. read from a seed
   with seed_parameter) of `value_column` per group, with the group's count, as percentile_value and
   value_count; interpolated like quantile_cont / percentile_cont. DuckDB: each group's values gathered
   in one list (a plain aggregate, which spills to disk under the memory limit), then quantile_cont of
   the list, row by row. The quantile_cont aggregate keeps a holistic state per group that does not
   spill: it is as fast for one baseline date (38.2 M steps: 2.9 s against 3.4 s) but ran out of memory
   at 1 GB for five dates at once (a backfill's first build), where the list form took 35 s. Sorting
   each group's list by hand took 10.8 s a date. Postgres: percentile_cont over the group's array
   (hash aggregate, no sort on disk). #}
{% macro percentile_by_group(relation, group_columns, value_column, fraction) -%}
    {{ return(adapter.dispatch('percentile_by_group', 'emergency_dw')(relation, group_columns, value_column, fraction)) }}
{%- endmacro %}

{% macro default__percentile_by_group(relation, group_columns, value_column, fraction) -%}
    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        list_aggregate(group_values, 'quantile_cont', {{ fraction }}) as percentile_value,
        len(group_values) as value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            list({{ value_column }}) as group_values
        from {{ relation }}
        where {{ value_column }} is not null
        group by {{ group_columns | join(', ') }}
    ) as grouped
{%- endmacro %}

{% macro postgres__percentile_by_group(relation, group_columns, value_column, fraction) -%}
    select
        {% for column in group_columns %}grouped.{{ column }},
        {% endfor -%}
        (
            select percentile_cont({{ fraction }}) within group (order by group_value.value)
            from unnest(grouped.group_values) as group_value (value)
        ) as percentile_value,
        grouped.value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            array_agg({{ value_column }}) as group_values,
            count({{ value_column }}) as value_count
        from {{ relation }}
        where {{ value_column }} is not null
        group by {{ group_columns | join(', ') }}
    ) as grouped
{%- endmacro %}

{# A number of the seed anomaly_thresholds (rule, parameter), read when the model runs, for SQL that
   needs a constant (DuckDB's quantile_cont takes only a constant fraction). Fails the model when the
   seed lacks the row, or is not loaded when a model is built. While dbt parses, and when it only
   compiles (docs generate) before the seed is loaded, 0.5 stands in. #}
{% macro seed_parameter(seed_name, rule, parameter) -%}
    {%- set seed = ref(seed_name) -%}
    {%- if not execute -%}
        {{ return(0.5) }}
    {%- endif -%}
    {%- if adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.identifier) is none -%}
        {%- if flags.WHICH in ('run', 'build') -%}
            {{ exceptions.raise_compiler_error("seed " ~ seed_name ~ " is not loaded in " ~ seed.schema ~ ": run dbt seed (or edw build) first") }}
        {%- endif -%}
        {{ return(0.5) }}
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

{# Pre-hook of the models that aggregate a 28-day window: on Postgres, memory for the window's hash
   aggregate (instead of an external sort on disk) and no JIT compilation (it costs more than it saves
   on these row counts), for this transaction only. Nothing elsewhere. #}
{% macro window_query_settings() -%}
    {{ return(adapter.dispatch('window_query_settings', 'emergency_dw')()) }}
{%- endmacro %}

{% macro default__window_query_settings() -%}
{%- endmacro %}

{% macro postgres__window_query_settings() -%}
    set local work_mem = '256MB'; set local jit = off
{%- endmacro %}
