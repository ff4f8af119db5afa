-- Every version of each registered enterprise's registry entry, with the local dates it was in force
-- (macro versions_in_force): what the risk index of a past day reads. Personal data is not carried.

with source as (

    select * from {{ source('amr', 'enterprise_registry') }}

),

versions as (

    {{ versions_in_force('source', 'enterprise_id') }}

),

final as (

    select
        enterprise_id,
        uscc,
        name,
        town_code,
        industry_code,
        registered_on,
        status,
        valid_from,
        valid_to,
        updated_at,
        _batch_id,
        _loaded_at
    from versions

)

select * from final
