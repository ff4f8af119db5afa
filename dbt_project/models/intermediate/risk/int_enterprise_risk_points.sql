-- The risk points of every monitored enterprise on every local day, one row per scored item: what was
-- measured (a category or a count) and the points it scores in the point table (seed risk_scoring):
-- categorical items by match_value, counted items by the highest min_value the count reaches.
-- Items: inherent (industry, major hazard source, special equipment and its overdue inspections),
-- management (standardisation grade, open, overdue and open major hazards, days since the last
-- inspection), environment (weather warnings in force in the town, high-risk geohazard points in the
-- town), monitoring (power anomalies and cable over-temperatures in the monitoring window).
-- Everything is taken as it stood on the risk date: hazards, warnings and anomalies as of its end; the safety
-- profile, registry entry, special equipment and geohazard points in the version in force that day (the
-- staging *_versions views: a record updated today changes the index from today on, and the days before keep
-- what was true then; a record's earliest version also stands for the days before it).
-- Incremental (replace_build_dates, by risk_date): a build replaces the rows of the enterprise days it
-- rebuilds, those that changed since the last build, however old (macro risk_rebuild_sets: the enterprises
-- and dates a loaded batch, a new version or a rebuilt power day touches; risk_rebuilt_rows); every row
-- carries _built_at.

-- depends_on: {{ ref('int_power_meter_day_scores') }}
-- depends_on: {{ ref('stg_power__cable_temperature_readings') }}
-- depends_on: {{ source('yjj', 'enterprise_safety_profiles') }}
-- depends_on: {{ source('amr', 'enterprise_registry') }}
-- depends_on: {{ source('amr', 'special_equipment') }}
-- depends_on: {{ source('zrzyj', 'geohazard_points') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'risk_rebuilt_rows', 'build_dates_column': 'risk_date'},
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
    )
}}

{%- set rebuild = risk_rebuild_sets() %}

with power_days as (

    -- a row per meter and local day read: the risk dates, from 96 times fewer rows than the readings

    select * from {{ ref('int_power_meter_days') }}

),

safety_profiles as (

    select * from {{ ref('stg_yjj__enterprise_safety_profile_versions') }}

),

enterprise_registry as (

    select * from {{ ref('stg_amr__enterprise_registry_versions') }}

),

special_equipment as (

    select * from {{ ref('stg_amr__special_equipment_versions') }}

),

hazard_inspections as (

    select * from {{ ref('stg_yjj__hazard_inspections') }}

),

weather_warnings as (

    select * from {{ ref('stg_qxj__weather_warnings') }}

),

geohazard_points as (

    select * from {{ ref('stg_zrzyj__geohazard_point_versions') }}

),

towns as (

    select * from {{ ref('towns') }}

),

power_anomalies as (

    select * from {{ ref('fct_power_anomalies') }}

),

risk_scoring as (

    select * from {{ ref('risk_scoring') }}

),

risk_parameters as (

    select * from {{ ref('risk_parameters') }}

),

settings as (

    select
        cast(max(case when parameter = 'monitoring_window_days' then value end) as integer)
            as monitoring_window_days
    from risk_parameters

),

risk_dates as (

    select distinct reading_date as risk_date
    from power_days
    {% if rebuild is not none %}
    where reading_date >= (select min(rebuild.from_date) from ({{ rebuild }}) as rebuild)
    {% endif %}

),

enterprise_days as (

    select
        safety_profiles.enterprise_id,
        safety_profiles.industry_code,
        safety_profiles.is_major_hazard_source,
        safety_profiles.standardisation_grade,
        cast(safety_profiles.last_inspected_on as date) as last_inspected_on,
        enterprise_registry.town_code,
        risk_dates.risk_date
    from safety_profiles
    inner join risk_dates
        on risk_dates.risk_date >= safety_profiles.valid_from
        and risk_dates.risk_date < safety_profiles.valid_to
    left join enterprise_registry
        on safety_profiles.enterprise_id = enterprise_registry.enterprise_id
        and risk_dates.risk_date >= enterprise_registry.valid_from
        and risk_dates.risk_date < enterprise_registry.valid_to
    where {{ in_risk_rebuild(rebuild, 'safety_profiles.enterprise_id', 'risk_dates.risk_date') }}

),

profile_items as (

    select enterprise_id, risk_date, 'industry_hazard' as item, industry_code as match_value
    from enterprise_days
    union all
    select
        enterprise_id,
        risk_date,
        'major_hazard_source' as item,
        case when is_major_hazard_source then 'true' else 'false' end as match_value
    from enterprise_days
    union all
    select enterprise_id, risk_date, 'standardisation_grade' as item, standardisation_grade as match_value
    from enterprise_days

),

inspection_items as (

    select
        enterprise_id,
        risk_date,
        'days_since_inspection' as item,
        greatest(risk_date - last_inspected_on, 0) as item_value
    from enterprise_days
    where last_inspected_on is not null

),

equipment_counts as (

    select
        enterprise_days.enterprise_id,
        enterprise_days.risk_date,
        count(*) as equipment_in_service,
        sum(
            case
                when special_equipment.status = 'in_use'
                    and cast(special_equipment.next_inspection_due as date) < enterprise_days.risk_date
                    then 1
                else 0
            end
        ) as equipment_overdue
    from enterprise_days
    inner join special_equipment
        on enterprise_days.enterprise_id = special_equipment.enterprise_id
        and enterprise_days.risk_date >= special_equipment.valid_from
        and enterprise_days.risk_date < special_equipment.valid_to
    where special_equipment.status <> 'scrapped'
    group by enterprise_days.enterprise_id, enterprise_days.risk_date

),

equipment_items as (

    select enterprise_id, risk_date, 'special_equipment' as item, equipment_in_service as item_value
    from equipment_counts
    union all
    select enterprise_id, risk_date, 'special_equipment_overdue' as item, equipment_overdue as item_value
    from equipment_counts

),

hazard_counts as (

    select
        enterprise_days.enterprise_id,
        enterprise_days.risk_date,
        count(*) as open_hazards,
        sum(
            case
                when cast(hazard_inspections.rectification_due_on as date) < enterprise_days.risk_date then 1
                else 0
            end
        ) as overdue_hazards,
        sum(case when hazard_inspections.hazard_level = 'major' then 1 else 0 end) as open_major_hazards
    from enterprise_days
    inner join hazard_inspections
        on enterprise_days.enterprise_id = hazard_inspections.enterprise_id
        and hazard_inspections.found_date <= enterprise_days.risk_date
        and (
            hazard_inspections.rectified_at is null
            or {{ local_date('hazard_inspections.rectified_at') }} > enterprise_days.risk_date
        )
    group by enterprise_days.enterprise_id, enterprise_days.risk_date

),

hazard_items as (

    select enterprise_id, risk_date, 'open_hazards' as item, open_hazards as item_value
    from hazard_counts
    union all
    select enterprise_id, risk_date, 'overdue_hazards' as item, overdue_hazards as item_value
    from hazard_counts
    union all
    select enterprise_id, risk_date, 'open_major_hazards' as item, open_major_hazards as item_value
    from hazard_counts

),

warnings_by_town as (

    select
        towns.town_code,
        weather_warnings.level,
        weather_warnings.issued_date,
        coalesce({{ local_date('weather_warnings.expires_at') }}, weather_warnings.issued_date) as expires_date
    from weather_warnings
    inner join towns
        on weather_warnings.area like ('%' || towns.town_name_zh || '%')

),

weather_items as (

    select distinct
        enterprise_days.enterprise_id,
        enterprise_days.risk_date,
        'weather_warning' as item,
        warnings_by_town.level as match_value
    from enterprise_days
    inner join warnings_by_town
        on enterprise_days.town_code = warnings_by_town.town_code
        and warnings_by_town.issued_date <= enterprise_days.risk_date
        and warnings_by_town.expires_date >= enterprise_days.risk_date

),

geohazard_counts as (

    select
        geohazard_points.town_code,
        risk_dates.risk_date,
        count(*) as high_risk_points
    from geohazard_points
    inner join risk_dates
        on risk_dates.risk_date >= geohazard_points.valid_from
        and risk_dates.risk_date < geohazard_points.valid_to
    where geohazard_points.risk_level = 'high'
    group by geohazard_points.town_code, risk_dates.risk_date

),

geohazard_items as (

    select
        enterprise_days.enterprise_id,
        enterprise_days.risk_date,
        'high_risk_geohazard_points' as item,
        geohazard_counts.high_risk_points as item_value
    from enterprise_days
    inner join geohazard_counts
        on enterprise_days.town_code = geohazard_counts.town_code
        and enterprise_days.risk_date = geohazard_counts.risk_date

),

monitoring_items as (

    select
        enterprise_days.enterprise_id,
        enterprise_days.risk_date,
        power_anomalies.rule as item,
        count(*) as item_value
    from enterprise_days
    cross join settings
    inner join power_anomalies
        on enterprise_days.enterprise_id = power_anomalies.enterprise_id
        and {{ local_date('power_anomalies.started_at') }} <= enterprise_days.risk_date
        and {{ local_date('power_anomalies.started_at') }}
        > enterprise_days.risk_date - settings.monitoring_window_days
    group by enterprise_days.enterprise_id, enterprise_days.risk_date, power_anomalies.rule

),

measured_items as (

    select enterprise_id, risk_date, item, cast(null as double precision) as item_value, match_value
    from profile_items
    union all
    select enterprise_id, risk_date, item, cast(item_value as double precision) as item_value, cast(null as varchar) as match_value
    from inspection_items
    union all
    select enterprise_id, risk_date, item, cast(item_value as double precision) as item_value, cast(null as varchar) as match_value
    from equipment_items
    union all
    select enterprise_id, risk_date, item, cast(item_value as double precision) as item_value, cast(null as varchar) as match_value
    from hazard_items
    union all
    select enterprise_id, risk_date, item, cast(null as double precision) as item_value, match_value
    from weather_items
    union all
    select enterprise_id, risk_date, item, cast(item_value as double precision) as item_value, cast(null as varchar) as match_value
    from geohazard_items
    union all
    select enterprise_id, risk_date, item, cast(item_value as double precision) as item_value, cast(null as varchar) as match_value
    from monitoring_items

),

items_scored as (

    select
        measured_items.enterprise_id,
        measured_items.risk_date,
        risk_scoring.factor,
        measured_items.item,
        measured_items.item_value,
        measured_items.match_value,
        risk_scoring.points,
        risk_scoring.reason,
        row_number() over (
            partition by measured_items.enterprise_id, measured_items.risk_date, measured_items.item
            order by risk_scoring.points desc, risk_scoring.min_value desc
        ) as score_rank
    from measured_items
    inner join risk_scoring
        on measured_items.item = risk_scoring.item
        and (
            measured_items.match_value = risk_scoring.match_value
            or measured_items.item_value >= risk_scoring.min_value
        )

),

final as (

    select
        items_scored.enterprise_id,
        items_scored.risk_date,
        items_scored.factor,
        items_scored.item,
        items_scored.item_value,
        items_scored.match_value,
        items_scored.points,
        replace(
            case
                when items_scored.item_value is null then items_scored.reason
                else replace(items_scored.reason, '{n}', cast(cast(items_scored.item_value as integer) as varchar))
            end,
            '{days}',
            cast(settings.monitoring_window_days as varchar)
        ) as reason,
        {{ built_at() }} as _built_at
    from items_scored
    cross join settings
    where items_scored.score_rank = 1

)

select * from final
