{# Per-group statistics of the power baselines, written per warehouse for speed (DESIGN section 7).
   Each macro returns a select over `relation` (a CTE name) grouped by `group_columns`. #}

{# Median (continuous: the mean of the two middle values of an even count), median absolute deviation
   from it, and the count of `value_column` per group, as median_value, mad_value and value_count.
   DuckDB: the median and mad aggregates in one pass. Postgres: the group's values in one array
   (hash aggregate, no big sort), then percentile_cont over the small array: about 3.5x faster than
   two percentile_cont passes over the rows, which sort every group on disk. #}
{% macro median_and_mad(relation, group_columns, value_column) -%}
    {{ return(adapter.dispatch('median_and_mad', 'emergency_dw')(relation, group_columns, value_column)) }}
{%- endmacro %}

{% macro default__median_and_mad(relation, group_columns, value_column) -%}
    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        median({{ value_column }}) as median_value,
        mad({{ value_column }}) as mad_value,
        count({{ value_column }}) as value_count
    from {{ relation }}
    group by {{ group_columns | join(', ') }}
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

{# The continuous percentile `fraction_column` (a column of `relation`, the same within a group: it
   comes from a seed) of `value_column` per group, with the group's count, as percentile_value and
   value_count. DuckDB's quantile_cont only takes a constant fraction: there the group's values are
   collected in a sorted list and the percentile interpolated between its neighbours (the
   quantile_cont formula). Postgres: percentile_cont over the group's array. #}
{% macro percentile_by_group(relation, group_columns, value_column, fraction_column) -%}
    {{ return(adapter.dispatch('percentile_by_group', 'emergency_dw')(relation, group_columns, value_column, fraction_column)) }}
{%- endmacro %}

{% macro default__percentile_by_group(relation, group_columns, value_column, fraction_column) -%}
    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        lower_value + (upper_value - lower_value) * (target_position - floor(target_position))
            as percentile_value,
        value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            value_count,
            target_position,
            sorted_values[cast(floor(target_position) as bigint) + 1] as lower_value,
            sorted_values[cast(ceil(target_position) as bigint) + 1] as upper_value
        from (
            select
                {% for column in group_columns %}{{ column }},
                {% endfor -%}
                list_sort(list({{ value_column }})) as sorted_values,
                count({{ value_column }}) as value_count,
                max({{ fraction_column }}) * (count({{ value_column }}) - 1) as target_position
            from {{ relation }}
            where {{ value_column }} is not null
            group by {{ group_columns | join(', ') }}
        ) as grouped
    ) as neighbours
{%- endmacro %}

{% macro postgres__percentile_by_group(relation, group_columns, value_column, fraction_column) -%}
    select
        {% for column in group_columns %}grouped.{{ column }},
        {% endfor -%}
        (
            select percentile_cont(grouped.fraction) within group (order by group_value.value)
            from unnest(grouped.group_values) as group_value (value)
        ) as percentile_value,
        grouped.value_count
    from (
        select
            {% for column in group_columns %}{{ column }},
            {% endfor -%}
            max({{ fraction_column }}) as fraction,
            array_agg({{ value_column }}) as group_values,
            count({{ value_column }}) as value_count
        from {{ relation }}
        where {{ value_column }} is not null
        group by {{ group_columns | join(', ') }}
    ) as grouped
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
