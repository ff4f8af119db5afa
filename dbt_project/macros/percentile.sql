{# The continuous percentile (linear interpolation) of a column, as an aggregate; nulls are ignored.
   DuckDB: quantile_cont; Postgres: the ordered-set aggregate percentile_cont. #}
{% macro continuous_percentile(column, fraction) -%}
    {{ return(adapter.dispatch('continuous_percentile', 'emergency_dw')(column, fraction)) }}
{%- endmacro %}

{% macro default__continuous_percentile(column, fraction) -%}
    quantile_cont({{ column }}, {{ fraction }})
{%- endmacro %}

{% macro postgres__continuous_percentile(column, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}
