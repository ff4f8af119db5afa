{# None of the columns is null: one scan of the model for all of them (one not_null test per column
   scans it once per column, each a node with dbt's own cost). A failing row names a column and how
   many of its rows are null. #}
{% test not_null_columns(model, columns) %}
with null_rows as (
    select
    {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
{% for column in columns -%}
select '{{ column }}' as column_name, {{ column }} as null_rows from null_rows where {{ column }} > 0
{% if not loop.last %}union all
{% endif -%}
{% endfor %}
{% endtest %}
