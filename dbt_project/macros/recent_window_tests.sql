{# Generic tests for the big incremental tables (a day of power readings is 1.38 M rows at full scale):
   they check the latest `days` local days before the latest `date_column` value (the rows a daily run
   has just rebuilt; older days were checked when they were built), so a daily build's tests do not
   grow with history. #}

{% test unique_combination_in_recent_days(model, combination_of_columns, date_column=none, days=1, time_column=none) %}
{#- time_column: a stored timestamp (the last days + 1 of it, so the local days are covered); cheaper
    than a date computed in a view, as the warehouse can skip old blocks by it -#}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
{%- if time_column %}
where {{ time_column }} >= (select max({{ time_column }}) from {{ model }}) - interval '{{ days + 1 }} days'
{%- else %}
where {{ date_column }} >= (select max({{ date_column }}) from {{ model }}) - {{ days }}
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test not_null_in_recent_days(model, column_name, date_column, days=1) %}
select {{ column_name }}
from {{ model }}
where {{ date_column }} >= (select max({{ date_column }}) from {{ model }}) - {{ days }}
    and {{ column_name }} is null
{% endtest %}
