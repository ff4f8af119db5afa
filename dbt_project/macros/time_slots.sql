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

{# The calendar kind of a local date: the seed calendar_days (statutory holidays, and adjusted working
   days: 调休) first, else the weekday: working_day (Monday to Friday), saturday, sunday.
   `calendar_kind` is the seed's day_kind joined on the date (null when the date is not in the seed). #}
{% macro day_kind(date_column, calendar_kind) -%}
    case
        when {{ calendar_kind }} = 'holiday' then 'holiday'
        when {{ calendar_kind }} = 'working_day' then 'working_day'
        when extract(dow from {{ date_column }}) between 1 and 5 then 'working_day'
        when extract(dow from {{ date_column }}) = 6 then 'saturday'
        else 'sunday'
    end
{%- endmacro %}

{# An aggregate: the group's values as a list in the order of `order_column` (nulls kept, so that a
   list of the 96 slots of a day has a place for every slot). #}
{% macro ordered_list(column, order_column) -%}
    {{ return(adapter.dispatch('ordered_list', 'emergency_dw')(column, order_column)) }}
{%- endmacro %}

{% macro default__ordered_list(column, order_column) -%}
    list({{ column }} order by {{ order_column }})
{%- endmacro %}

{% macro postgres__ordered_list(column, order_column) -%}
    array_agg({{ column }} order by {{ order_column }})
{%- endmacro %}

{# The start (UTC) of a 15-minute slot of a local (Asia/Shanghai) date: slot 0 is local midnight. #}
{% macro local_slot_start(date_column, slot_column) -%}
    {{ return(adapter.dispatch('local_slot_start', 'emergency_dw')(date_column, slot_column)) }}
{%- endmacro %}

{% macro default__local_slot_start(date_column, slot_column) -%}
    timezone('Asia/Shanghai', cast({{ date_column }} as timestamp) + {{ slot_column }} * interval '15 minutes')
{%- endmacro %}

{% macro postgres__local_slot_start(date_column, slot_column) -%}
    ((cast({{ date_column }} as timestamp) + {{ slot_column }} * interval '15 minutes') at time zone 'Asia/Shanghai')
{%- endmacro %}

{# Every date from the least to the greatest of `date_column` in `relation` (a CTE), as rows
   (reading_date). #}
{% macro date_range_rows(relation, date_column) -%}
    {{ return(adapter.dispatch('date_range_rows', 'emergency_dw')(relation, date_column)) }}
{%- endmacro %}

{% macro default__date_range_rows(relation, date_column) -%}
    select cast(unnest(generate_series(
        cast(min({{ date_column }}) as timestamp), cast(max({{ date_column }}) as timestamp), interval '1 day'
    )) as date) as reading_date
    from {{ relation }}
{%- endmacro %}

{% macro postgres__date_range_rows(relation, date_column) -%}
    select cast(generate_series(
        cast(min({{ date_column }}) as timestamp), cast(max({{ date_column }}) as timestamp), interval '1 day'
    ) as date) as reading_date
    from {{ relation }}
{%- endmacro %}
