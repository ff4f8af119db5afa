{# Helpers of the power baselines (DESIGN section 7: a daily cost that does not grow with history).

   A rolling window is kept as two lists of equal length, the local dates and the values (DuckDB lists,
   Postgres arrays), so that a day's run moves the window along by one day (drop the oldest day, append
   the newest) instead of gathering baseline_days x meters x 96 readings again. Gathering them is the
   costly part: at full scale DuckDB's list aggregate over 38.6 M readings spills under the 1 GB memory
   bound (10 s a date), and its holistic median and mad aggregates do not spill at all; Postgres sorts
   them on disk. #}

{# An aggregate: the column's values of the group as a list. #}
{% macro value_list(column) -%}
    {{ return(adapter.dispatch('value_list', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__value_list(column) -%}
    list({{ column }})
{%- endmacro %}

{% macro postgres__value_list(column) -%}
    array_agg({{ column }})
{%- endmacro %}

{# Two lists one after the other; a null list counts as empty. #}
{% macro concat_lists(first, second) -%}
    {{ return(adapter.dispatch('concat_lists', 'emergency_dw')(first, second)) }}
{%- endmacro %}

{% macro default__concat_lists(first, second) -%}
    list_concat({{ first }}, {{ second }})
{%- endmacro %}

{% macro postgres__concat_lists(first, second) -%}
    array_cat({{ first }}, {{ second }})
{%- endmacro %}

{# The elements of `values` whose date (the same position of `dates`) lies within [low, high]. #}
{% macro values_dated_within(values, dates, low, high) -%}
    {{ return(adapter.dispatch('values_dated_within', 'emergency_dw')(values, dates, low, high)) }}
{%- endmacro %}

{% macro default__values_dated_within(values, dates, low, high) -%}
    list_filter({{ values }}, lambda value, position: {{ dates }}[position] between {{ low }} and {{ high }})
{%- endmacro %}

{% macro postgres__values_dated_within(values, dates, low, high) -%}
    array(
        select dated.value
        from unnest({{ dates }}, {{ values }}) as dated (day, value)
        where dated.day between {{ low }} and {{ high }}
    )
{%- endmacro %}

{# The number of elements of a list (0 for a null list). #}
{% macro list_length(values) -%}
    {{ return(adapter.dispatch('list_length', 'emergency_dw')(values)) }}
{%- endmacro %}

{% macro default__list_length(values) -%}
    coalesce(len({{ values }}), 0)
{%- endmacro %}

{% macro postgres__list_length(values) -%}
    coalesce(cardinality({{ values }}), 0)
{%- endmacro %}

{# Median (continuous: the mean of the two middle values of an even count), median absolute deviation
   from it, and the count of the values in each row's list `values_column`, as median_value, mad_value
   and value_count, beside `key_columns`, for every row of `relation` (a CTE name). #}
{% macro median_and_mad_of_lists(relation, key_columns, values_column) -%}
    {{ return(adapter.dispatch('median_and_mad_of_lists', 'emergency_dw')(relation, key_columns, values_column)) }}
{%- endmacro %}

{% macro default__median_and_mad_of_lists(relation, key_columns, values_column) -%}
    select
        {% for column in key_columns %}{{ column }},
        {% endfor -%}
        median_value,
        list_median(list_transform({{ values_column }}, lambda value: abs(value - median_value))) as mad_value,
        len({{ values_column }}) as value_count
    from (
        select
            {% for column in key_columns %}{{ column }},
            {% endfor -%}
            {{ values_column }},
            list_median({{ values_column }}) as median_value
        from {{ relation }}
    ) as with_median
{%- endmacro %}

{% macro postgres__median_and_mad_of_lists(relation, key_columns, values_column) -%}
    select
        {% for column in key_columns %}listed.{{ column }},
        {% endfor -%}
        statistics.median_value,
        statistics.mad_value,
        coalesce(cardinality(listed.{{ values_column }}), 0) as value_count
    from {{ relation }} as listed
    cross join lateral (
        select
            middle.median_value,
            (
                select percentile_cont(0.5) within group (order by abs(deviations.value - middle.median_value))
                from unnest(listed.{{ values_column }}) as deviations (value)
            ) as mad_value
        from (
            select percentile_cont(0.5) within group (order by listed_value.value) as median_value
            from unnest(listed.{{ values_column }}) as listed_value (value)
        ) as middle
    ) as statistics
{%- endmacro %}

{# An aggregate: the `count` largest values of the column in the group, largest first (nulls ignored). #}
{% macro largest_values(column, count) -%}
    {{ return(adapter.dispatch('largest_values', 'emergency_dw')(column, count)) }}
{%- endmacro %}

{% macro default__largest_values(column, count) -%}
    max({{ column }}, {{ count }})
{%- endmacro %}

{% macro postgres__largest_values(column, count) -%}
    (array_agg({{ column }} order by {{ column }} desc) filter (where {{ column }} is not null))[1:{{ count }}]
{%- endmacro %}

{# Per group of `relation`: the `keep` largest values of its rows' lists `values_column`, largest first,
   as merged_values, and the sum of `count_column`, as value_count. #}
{% macro merge_largest_by_group(relation, group_columns, values_column, count_column, keep) -%}
    {{ return(adapter.dispatch('merge_largest_by_group', 'emergency_dw')(relation, group_columns, values_column, count_column, keep)) }}
{%- endmacro %}

{% macro default__merge_largest_by_group(relation, group_columns, values_column, count_column, keep) -%}
    {#- unnested and kept by max(value, keep), a bounded aggregate: 7x faster than sorting each group's
        merged list -#}
    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        max(merged_value, {{ keep }}) as merged_values,
        cast(sum(case when merged_position = 1 then {{ count_column }} end) as bigint) as value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            {{ count_column }},
            unnest({{ values_column }}) as merged_value,
            generate_subscripts({{ values_column }}, 1) as merged_position
        from {{ relation }}
    ) as unnested
    group by {{ group_columns | join(', ') }}
{%- endmacro %}

{% macro postgres__merge_largest_by_group(relation, group_columns, values_column, count_column, keep) -%}
    select
        {% for column in group_columns %}counted.{{ column }},
        {% endfor -%}
        merged.merged_values,
        counted.value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            cast(sum({{ count_column }}) as bigint) as value_count
        from {{ relation }}
        group by {{ group_columns | join(', ') }}
    ) as counted
    inner join (
        select
            {% for column in group_columns %}grouped.{{ column }},
            {% endfor -%}
            (array_agg(merged_value.value order by merged_value.value desc))[1:{{ keep }}] as merged_values
        from {{ relation }} as grouped
        cross join lateral unnest(grouped.{{ values_column }}) as merged_value (value)
        group by {% for column in group_columns %}grouped.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
    ) as merged
        on {% for column in group_columns %}counted.{{ column }} = merged.{{ column }}{{ ' and ' if not loop.last }}{% endfor %}
{%- endmacro %}

{# The continuous percentile `fraction` (interpolated between ranks like quantile_cont and
   percentile_cont) of `value_count` values, from a list of at least their largest
   value_count - floor((value_count - 1) x fraction) values, largest first. Null for no values. #}
{% macro percentile_of_largest(descending_values, value_count, fraction) -%}
    {%- set rank = '((' ~ value_count ~ ' - 1) * ' ~ fraction ~ ')' -%}
    case when {{ value_count }} > 0 then
        {{ descending_values }}[cast({{ value_count }} - floor({{ rank }}) as integer)]
        + ({{ rank }} - floor({{ rank }}))
        * (
            {{ descending_values }}[cast({{ value_count }} - ceil({{ rank }}) as integer)]
            - {{ descending_values }}[cast({{ value_count }} - floor({{ rank }}) as integer)]
        )
    end
{%- endmacro %}

{# A number of the seed anomaly_thresholds (rule, parameter), read when the model runs, for SQL that
   needs a constant (the number of largest steps a day keeps). Fails the model when the seed lacks the
   row, or is not loaded when a model is built. While dbt parses, and when it only compiles (docs
   generate) before the seed is loaded, `placeholder` stands in. #}
{% macro seed_parameter(seed_name, rule, parameter, placeholder=0.5) -%}
    {%- set seed = ref(seed_name) -%}
    {%- if not execute -%}
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
