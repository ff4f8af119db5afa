{# The local (Asia/Shanghai) calendar date of a UTC timestamp: marts expose *_date in local time. #}
{% macro local_date(column) -%}
    {{ return(adapter.dispatch('local_date', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__local_date(column) -%}
    cast(timezone('Asia/Shanghai', {{ column }}) as date)
{%- endmacro %}

{% macro postgres__local_date(column) -%}
    cast(({{ column }} at time zone 'Asia/Shanghai') as date)
{%- endmacro %}

{# Seconds between two timestamps (null when either is null). #}
{% macro seconds_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('seconds_between', 'emergency_dw')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__seconds_between(start_column, end_column) -%}
    (epoch({{ end_column }}) - epoch({{ start_column }}))
{%- endmacro %}

{% macro postgres__seconds_between(start_column, end_column) -%}
    extract(epoch from ({{ end_column }} - {{ start_column }}))
{%- endmacro %}
