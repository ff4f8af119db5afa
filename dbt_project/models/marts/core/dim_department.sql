-- The departments (and the power utility and towns) that provide the platform's feeds.

with departments as (

    select * from {{ ref('departments') }}

),

final as (

    select
        department_code,
        department_name,
        department_name_zh,
        provider_kind
    from departments

)

select * from final
