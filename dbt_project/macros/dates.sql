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

{# A number as text for a warning's reason: rounded to `digits` decimals (whole numbers without a point). #}
{% macro number_text(column, digits=0) -%}
    {{ return(adapter.dispatch('number_text', 'emergency_dw')(column, digits)) }}
{%- endmacro %}

{% macro default__number_text(column, digits=0) -%}
    {%- if digits == 0 -%}
        cast(cast(round({{ column }}) as bigint) as varchar)
    {%- else -%}
        cast(round(cast({{ column }} as double), {{ digits }}) as varchar)
    {%- endif -%}
{%- endmacro %}

{% macro postgres__number_text(column, digits=0) -%}
    {%- if digits == 0 -%}
        cast(cast(round({{ column }}) as bigint) as varchar)
    {%- else -%}
        cast(round(cast({{ column }} as numeric), {{ digits }}) as varchar)
    {%- endif -%}
{%- endmacro %}
