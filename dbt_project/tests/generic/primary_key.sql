{# The column identifies a row: never null, never repeated. One scan of the model for both checks (a
   unique and a not_null test scan it twice, and each test is a node with dbt's own cost per node).
   A failing row is a key value (null included) and how many rows hold it. #}
{% test primary_key(model, column_name) %}
select {{ column_name }} as key_value, count(*) as n
from {{ model }}
group by {{ column_name }}
having {{ column_name }} is null or count(*) > 1
{% endtest %}
