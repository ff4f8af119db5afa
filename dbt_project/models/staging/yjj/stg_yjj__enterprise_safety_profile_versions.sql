-- Every version of each metered enterprise's safety profile, with the local dates it was in force
-- (macro versions_in_force): what the risk index of a past day reads. Personal data is not carried.

with source as (

    select * from {{ source('yjj', 'enterprise_safety_profiles') }}

),

versions as (

    {{ versions_in_force('source', 'enterprise_id') }}

),

final as (

    select
        enterprise_id,
        industry_code,
        is_major_hazard_source,
        standardisation_grade,
        contracted_capacity_kw,
        employees,
        last_inspected_on,
        valid_from,
        valid_to,
        updated_at,
        _batch_id,
        _loaded_at
    from versions

)

select * from final
