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

{# The instant a local day ('YYYY-MM-DD') starts, a timestamp with time zone: the bound of a range on a raw
   timestamp, which an index or a partition's bounds can answer (a filter on local_date() of it cannot). #}
{% macro local_day_start(day) -%}
    {{ return(adapter.dispatch('local_day_start', 'emergency_dw')(day)) }}
{%- endmacro %}

{% macro default__local_day_start(day) -%}
    timezone('Asia/Shanghai', cast('{{ day }}' as timestamp))
{%- endmacro %}

{% macro postgres__local_day_start(day) -%}
    (cast('{{ day }}' as timestamp) at time zone 'Asia/Shanghai')
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
