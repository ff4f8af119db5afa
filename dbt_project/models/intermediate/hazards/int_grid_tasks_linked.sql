-- Grid tasks with the warning that raised them, linked by the keys the grid system holds: an inspection
-- hazard by its id, a guardian-code hazard report by its scan id, a power warning by its enterprise and
-- start (source_ref_id `E000123@2026-11-27T02:15:00Z`: the power platform sends no warehouse key). A power
-- task links to the warehouse's own warning (fct_power_anomalies) of that enterprise under way within the
-- seed's tolerance of that start (hazard_loop_links), the nearest start first: the rules may date an event
-- a reading or two apart from the platform. A record the warehouse does not hold (not delivered yet, or a
-- warning its rules did not raise) leaves the task unlinked. Citizen reports (12345 hotline tickets) have
-- no record here to link.

with grid_tasks as (

    select * from {{ ref('stg_dsj__grid_tasks') }}

),

hazards as (

    select * from {{ ref('stg_yjj__hazard_inspections') }}

),

scans as (

    select * from {{ ref('stg_dsj__guardian_code_scans') }}

),

power_warnings as (

    select * from {{ ref('fct_power_anomalies') }}

),

links as (

    select * from {{ ref('hazard_loop_links') }}

),

settings as (

    select
        max(case when parameter = 'power_warning_match_hours' then value end) * 3600.0
            as power_warning_match_seconds
    from links

),

power_refs as (

    select
        task_id,
        split_part(source_ref_id, '@', 1) as warning_enterprise_id,
        {{ utc_timestamp_from_text("split_part(source_ref_id, '@', 2)") }} as warning_started_at
    from grid_tasks
    where source = 'power_warning'

),

power_matches as (

    select
        power_refs.task_id,
        power_warnings.anomaly_id,
        power_warnings.rule as anomaly_rule,
        power_warnings.started_at as anomaly_started_at,
        row_number() over (
            partition by power_refs.task_id
            order by
                abs({{ seconds_between('power_refs.warning_started_at', 'power_warnings.started_at') }}),
                power_warnings.anomaly_id
        ) as match_rank
    from power_refs
    cross join settings
    inner join power_warnings
        on power_refs.warning_enterprise_id = power_warnings.enterprise_id
        and {{ seconds_between('power_refs.warning_started_at', 'power_warnings.started_at') }}
        <= settings.power_warning_match_seconds
        and {{ seconds_between('power_warnings.ended_at', 'power_refs.warning_started_at') }}
        <= settings.power_warning_match_seconds

),

power_links as (

    select * from power_matches
    where match_rank = 1

),

linked as (

    select
        grid_tasks.task_id,
        grid_tasks.source,
        grid_tasks.source_ref_id,
        grid_tasks.enterprise_id,
        grid_tasks.town_code,
        grid_tasks.grid_worker_id,
        grid_tasks.created_at,
        grid_tasks.created_date,
        grid_tasks.assigned_at,
        grid_tasks.verified_at,
        grid_tasks.rectified_at,
        grid_tasks.closed_at,
        grid_tasks.status,
        grid_tasks.updated_at,
        hazards.hazard_id,
        hazards.hazard_level,
        hazards.category as hazard_category,
        hazards.rectification_due_on as hazard_rectification_due_on,
        scans.scan_id as guardian_scan_id,
        power_links.anomaly_id,
        power_links.anomaly_rule,
        case
            when hazards.hazard_id is not null then hazards.found_at
            when scans.scan_id is not null then scans.scanned_at
            when power_links.anomaly_id is not null then power_links.anomaly_started_at
        end as warning_at
    from grid_tasks
    left join hazards
        on grid_tasks.source = 'hazard_inspection'
        and grid_tasks.source_ref_id = hazards.hazard_id
    left join scans
        on grid_tasks.source = 'guardian_scan'
        and grid_tasks.source_ref_id = scans.scan_id
    left join power_links
        on grid_tasks.task_id = power_links.task_id

),

final as (

    select * from linked

)

select * from final
