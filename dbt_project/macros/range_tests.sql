{# Generic test: every non-null value of the column lies within [min_value, max_value] (either bound
   optional). Used on the marts' durations (never negative: a reversed interval is null, not < 0),
   shares (0..1) and scores. #}
{% test value_between(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and (
        false
        {% if min_value is not none %}or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %}or {{ column_name }} > {{ max_value }}{% endif %}
    )
{% endtest %}
