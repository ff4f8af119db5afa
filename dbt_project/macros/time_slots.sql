{# The 15-minute slot of the local (Asia/Shanghai) day a UTC timestamp falls in: 0 (00:00-00:15)
   to 95 (23:45-24:00). #}
{% macro local_slot(column) -%}
    {{ return(adapter.dispatch('local_slot', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__local_slot(column) -%}
    (
        cast(extract(hour from timezone('Asia/Shanghai', {{ column }})) as integer) * 4
        + cast(floor(extract(minute from timezone('Asia/Shanghai', {{ column }})) / 15) as integer)
    )
{%- endmacro %}

{% macro postgres__local_slot(column) -%}
    (
        cast(extract(hour from ({{ column }} at time zone 'Asia/Shanghai')) as integer) * 4
        + cast(floor(extract(minute from ({{ column }} at time zone 'Asia/Shanghai')) / 15) as integer)
    )
{%- endmacro %}

{# Whole seconds since 1970-01-01 UTC of a timestamp (for deterministic keys). #}
{% macro epoch_seconds(column) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__epoch_seconds(column) -%}
    cast(epoch({{ column }}) as bigint)
{%- endmacro %}

{% macro postgres__epoch_seconds(column) -%}
    cast(extract(epoch from {{ column }}) as bigint)
{%- endmacro %}

{# A deterministic key from some columns: md5 of their text joined by '|' (the same on DuckDB and
   Postgres as long as the parts are text or integers). #}
{% macro hash_key(columns) -%}
    md5(concat_ws('|'{% for column in columns %}, cast({{ column }} as varchar){% endfor %}))
{%- endmacro %}
