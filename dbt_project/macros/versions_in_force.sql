{# The versions of a re-delivered snapshot record (a new version when its updated_at moves), each with the
   local dates it is in force: from the local date of its updated_at (the last version of a day stands for
   that day) until the next version's date (exclusive, `valid_to`); a record's earliest version also stands
   for the dates before it (valid_from 0001-01-01: nothing older is known). `source` is a relation or CTE
   of the raw rows, `key` the record's key. What a day's risk index reads, so that a record updated today
   changes the index from today on and the days before it keep what was true then. #}
{% macro versions_in_force(source, key) -%}
    select
        *,
        case
            when row_number() over (partition by {{ key }} order by version_date) = 1
                then cast('0001-01-01' as date)
            else version_date
        end as valid_from,
        coalesce(
            lead(version_date) over (partition by {{ key }} order by version_date),
            cast('9999-12-31' as date)
        ) as valid_to
    from (
        select
            *,
            {{ local_date('updated_at') }} as version_date,
            row_number() over (
                partition by {{ key }}, {{ local_date('updated_at') }}
                order by updated_at desc, _loaded_at desc, _row desc
            ) as day_rank
        from {{ source }}
    ) as dated
    where day_rank = 1
{%- endmacro %}
