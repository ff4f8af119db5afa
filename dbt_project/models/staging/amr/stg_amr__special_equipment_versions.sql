-- Every version of each registered piece of special equipment, with the local dates it was in force
-- (macro versions_in_force): what the risk index of a past day reads. Personal data is not carried.

with source as (

    select * from {{ source('amr', 'special_equipment') }}

),

versions as (

    {{ versions_in_force('source', 'equipment_id') }}

),

final as (

    select
        equipment_id,
        enterprise_id,
        equipment_type,
        registration_no,
        last_inspected_on,
        next_inspection_due,
        status,
        valid_from,
        valid_to,
        updated_at,
        _batch_id,
        _loaded_at
    from versions

)

select * from final
