-- Every version of each geohazard point, with the local dates it was in force
-- (macro versions_in_force): what the risk index of a past day reads. Personal data is not carried.

with source as (

    select * from {{ source('zrzyj', 'geohazard_points') }}

),

versions as (

    {{ versions_in_force('source', 'point_id') }}

),

final as (

    select
        point_id,
        hazard_type,
        town_code,
        lat,
        lon,
        threatened_people,
        risk_level,
        valid_from,
        valid_to,
        updated_at,
        _batch_id,
        _loaded_at
    from versions

)

select * from final
