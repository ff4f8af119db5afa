{# The power models compare a value with its neighbours on a meter's dense 15-minute grid (the rows of a
   window ordered by time, one per interval). #}

{# function(column at -reach..+reach rows): e.g. greatest(...) is the value at its most favourable within
   +-reach intervals. Nulls are ignored, as greatest and least do on DuckDB and Postgres. #}
{% macro over_neighbours(function, column, reach, window='by_meter') -%}
    {{ over_offsets(function, column, -reach, reach, window) }}
{%- endmacro %}

{# True when every column has a value at every row within +-reach intervals. #}
{% macro neighbours_all_present(columns, reach, window='by_meter') -%}
    {%- for column in columns %}
    (
        {%- for k in range(1, reach + 1) %}
        case when lag({{ column }}, {{ k }}) over {{ window }} is null then 0 else 1 end
        + case when lead({{ column }}, {{ k }}) over {{ window }} is null then 0 else 1 end +
        {%- endfor %}
        case when {{ column }} is null then 0 else 1 end
    ) = {{ 2 * reach + 1 }}{{ ' and' if not loop.last else '' }}
    {%- endfor %}
{%- endmacro %}

{# function(column at rows first..last from this one, negative before it): the value a frame
   `rows between ... and ...` would aggregate with max or min, read as lags and leads of the window the
   other neighbours use, so that it costs no window pass of its own. A frame of one row is the column. #}
{% macro over_offsets(function, column, first, last, window='by_meter') -%}
    {%- set offsets = range(first, last + 1) | list %}
    {%- if offsets | length == 1 and offsets[0] == 0 -%}
    {{ column }}
    {%- else -%}
    {{ function }}(
        {%- for k in offsets %}
        {% if k < 0 %}lag({{ column }}, {{ -k }}) over {{ window }}{% elif k > 0 %}lead({{ column }}, {{ k }}) over {{ window }}{% else %}{{ column }}{% endif %}{{ ',' if not loop.last else '' }}
        {%- endfor %}
    )
    {%- endif %}
{%- endmacro %}

{# Two days' hourly lists compared element by element, as one expression (no row per hour): the sum over
   the hours read on both days of `term`, in which {a} stands for the hour's value in `loads` and {b} for its
   value in `history_loads`; an hour missing on either day adds 0 (least() would take its cap for a null).
   E.g. term '1' counts the hours read on both. #}
{% macro sum_over_hours_read(loads, history_loads, term, hours=24) -%}
    {%- set terms = [] -%}
    {%- for hour in range(1, hours + 1) -%}
        {%- set a = loads ~ '[' ~ hour ~ ']' -%}
        {%- set b = history_loads ~ '[' ~ hour ~ ']' -%}
        {%- do terms.append(
            'case when ' ~ a ~ ' is not null and ' ~ b ~ ' is not null then '
            ~ term | replace('{a}', a) | replace('{b}', b) ~ ' else 0 end') -%}
    {%- endfor -%}
    {{ terms | join(' +\n        ') }}
{%- endmacro %}
