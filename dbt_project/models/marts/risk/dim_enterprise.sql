-- One row per enterprise known to the market regulator or to the emergency bureau: its registration,
-- town and industry, and its safety profile when it is monitored (metered). The latest snapshot of
-- each source (a dimension, rebuilt in full: tens of thousands of rows). No personal data: the
-- legal representative and the safety officer are left out.

with enterprise_registry as (

    select * from {{ ref('stg_amr__enterprise_registry') }}

),

safety_profiles as (

    select * from {{ ref('stg_yjj__enterprise_safety_profiles') }}

),

towns as (

    select * from {{ ref('towns') }}

),

industries as (

    select * from {{ ref('industries') }}

),

enterprises_joined as (

    select
        coalesce(enterprise_registry.enterprise_id, safety_profiles.enterprise_id) as enterprise_id,
        enterprise_registry.name as enterprise_name,
        enterprise_registry.uscc,
        enterprise_registry.town_code,
        coalesce(safety_profiles.industry_code, enterprise_registry.industry_code) as industry_code,
        enterprise_registry.status as registry_status,
        cast(enterprise_registry.registered_on as date) as registered_on,
        safety_profiles.enterprise_id is not null as is_monitored,
        safety_profiles.is_major_hazard_source,
        safety_profiles.standardisation_grade,
        safety_profiles.contracted_capacity_kw,
        safety_profiles.employees,
        cast(safety_profiles.last_inspected_on as date) as last_inspected_on
    from enterprise_registry
    full outer join safety_profiles
        on enterprise_registry.enterprise_id = safety_profiles.enterprise_id

),

final as (

    select
        enterprises_joined.enterprise_id,
        enterprises_joined.enterprise_name,
        enterprises_joined.uscc,
        enterprises_joined.town_code,
        towns.town_name,
        towns.town_name_zh,
        enterprises_joined.industry_code,
        industries.industry_name_zh,
        enterprises_joined.registry_status,
        enterprises_joined.registered_on,
        enterprises_joined.is_monitored,
        enterprises_joined.is_major_hazard_source,
        enterprises_joined.standardisation_grade,
        enterprises_joined.contracted_capacity_kw,
        enterprises_joined.employees,
        enterprises_joined.last_inspected_on
    from enterprises_joined
    left join towns
        on enterprises_joined.town_code = towns.town_code
    left join industries
        on enterprises_joined.industry_code = industries.industry_code

)

select * from final
