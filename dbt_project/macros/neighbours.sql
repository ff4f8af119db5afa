{# The power models compare a value with its neighbours on a meter's dense 15-minute grid (the rows of a
   window ordered by time, one per interval). #}

{# function(column at -reach..+reach rows): e.g. greatest(...) is the value at its most favourable within
   +-reach intervals. Nulls are ignored, as greatest and least do on DuckDB and Postgres. #}
{% macro over_neighbours(function, column, reach, window='by_meter') -%}
    {{ function }}(
        {%- for k in range(1, reach + 1) %}
        lag({{ column }}, {{ k }}) over {{ window }}, lead({{ column }}, {{ k }}) over {{ window }},
        {%- endfor %}
        {{ column }}
    )
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
