-- Grid tasks with the warning that started them: the inspection hazard or the guardian-code hazard
-- report that source_ref_id points to (power warnings and citizen reports carry no linkable record here).

with grid_tasks as (

    select * from {{ ref('stg_dsj__grid_tasks') }}

),

hazards as (

    select * from {{ ref('stg_yjj__hazard_inspections') }}

),

scans as (

    select * from {{ ref('stg_dsj__guardian_code_scans') }}

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
        case
            when hazards.hazard_id is not null then hazards.found_at
            when scans.scan_id is not null then scans.scanned_at
        end as warning_at
    from grid_tasks
    left join hazards
        on grid_tasks.source = 'hazard_inspection'
        and grid_tasks.source_ref_id = hazards.hazard_id
    left join scans
        on grid_tasks.source = 'guardian_scan'
        and grid_tasks.source_ref_id = scans.scan_id

),

final as (

    select * from linked

)

select * from final
