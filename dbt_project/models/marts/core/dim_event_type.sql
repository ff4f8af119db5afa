-- GB/T 35561-2017 emergency event types with their category.

with event_types as (

    select * from {{ ref('event_types') }}

),

event_categories as (

    select * from {{ ref('event_categories') }}

),

final as (

    select
        event_types.event_type_code,
        event_types.event_type_name,
        event_types.event_type_name_zh,
        event_types.event_category,
        event_categories.event_category_code,
        event_categories.event_category_name,
        event_categories.event_category_name_zh
    from event_types
    left join event_categories
        on event_types.event_category = event_categories.event_category

)

select * from final
