{# A UTC timestamp written as text by a source system (`2026-11-27T02:15:00Z`), or null when the text is
   not one: a malformed reference leaves a row unlinked, it does not fail the build. #}
{% macro utc_timestamp_from_text(column) -%}
    {{ return(adapter.dispatch('utc_timestamp_from_text', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp_from_text(column) -%}
    try_cast({{ column }} as timestamp with time zone)
{%- endmacro %}

{% macro postgres__utc_timestamp_from_text(column) -%}
    case
        when {{ column }} ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$'
            then cast({{ column }} as timestamp with time zone)
    end
{%- endmacro %}
