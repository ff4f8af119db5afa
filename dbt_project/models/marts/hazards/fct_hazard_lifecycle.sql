-- The hazard loop, one row per grid task: warning -> task -> assigned -> verified -> rectified -> closed,
-- each stage linked by the keys the grid system holds (int_grid_tasks_linked: the inspection hazard, the
-- guardian-code hazard report, the power warning's anomaly_id), the hours each step took, and whether a
-- step ran (or is running) past its target (seed hazard_loop_targets; a linked inspection hazard's own
-- rectification due date wins). A task closed as a false alarm is closed, has nothing to rectify and is
-- never overdue. A step whose timestamps are out of order has null hours and the row is flagged. Open steps
-- are judged as of the latest change in the feed (status_as_of_at), so a rebuild of the same data gives the
-- same answer. A table, not incremental: tasks change status for weeks after they are created.

{%- set steps = [
    ('warning_to_task', 'warning_at', 'created_at'),
    ('assignment', 'created_at', 'assigned_at'),
    ('verification', 'assigned_at', 'verified_at'),
    ('rectification', 'verified_at', 'rectified_at'),
    ('closing', 'rectified_at', 'closed_at'),
    ('task_to_closed', 'created_at', 'closed_at'),
] %}

with linked_tasks as (

    select * from {{ ref('int_grid_tasks_linked') }}

),

targets as (

    select * from {{ ref('hazard_loop_targets') }}

),

step_targets as (

    select
        max(case when step = 'assignment' then target_hours end) as assignment_target_hours,
        max(case when step = 'verification' then target_hours end) as verification_target_hours,
        max(case when step = 'rectification' then target_hours end) as rectification_target_hours,
        max(case when step = 'closing' then target_hours end) as closing_target_hours
    from targets

),

-- a false alarm has no rectification: whatever the source says of one is not carried
tasks as (

    select
        task_id,
        source,
        source_ref_id,
        hazard_id,
        hazard_level,
        hazard_category,
        guardian_scan_id,
        anomaly_id,
        anomaly_rule,
        enterprise_id,
        town_code,
        grid_worker_id,
        warning_at,
        created_at,
        created_date,
        assigned_at,
        verified_at,
        case when status != 'false_alarm' then rectified_at end as rectified_at,
        closed_at,
        case when status != 'false_alarm' then hazard_rectification_due_on end as hazard_rectification_due_on,
        status,
        status = 'false_alarm' as is_false_alarm,
        updated_at
    from linked_tasks

),

as_of as (

    select max(updated_at) as status_as_of_at from tasks

),

timed as (

    select
        tasks.*,
        as_of.status_as_of_at,
        step_targets.assignment_target_hours,
        step_targets.verification_target_hours,
        step_targets.rectification_target_hours,
        step_targets.closing_target_hours,
        {% for name, start_at, end_at in steps %}
        coalesce(tasks.{{ end_at }} < tasks.{{ start_at }}, false) as is_{{ name }}_reversed,
        case
            when tasks.{{ end_at }} >= tasks.{{ start_at }}
                then cast({{ seconds_between('tasks.' ~ start_at, 'tasks.' ~ end_at) }} as double precision) / 3600.0
        end as {{ name }}_hours,
        {% endfor %}
        cast({{ seconds_between('tasks.created_at', 'as_of.status_as_of_at') }} as double precision) / 3600.0
            as created_age_hours,
        cast({{ seconds_between('tasks.assigned_at', 'as_of.status_as_of_at') }} as double precision) / 3600.0
            as assigned_age_hours,
        cast({{ seconds_between('tasks.verified_at', 'as_of.status_as_of_at') }} as double precision) / 3600.0
            as verified_age_hours,
        cast({{ seconds_between('tasks.rectified_at', 'as_of.status_as_of_at') }} as double precision) / 3600.0
            as rectified_age_hours,
        {{ local_date('tasks.rectified_at') }} as rectified_date,
        {{ local_date('as_of.status_as_of_at') }} as status_as_of_date
    from tasks
    cross join as_of
    cross join step_targets

),

judged as (

    select
        *,
        -- a false alarm is closed and was never late: nothing was at risk
        case
            when is_false_alarm then false
            when assignment_hours is not null then assignment_hours > assignment_target_hours
            when status = 'created' then created_age_hours > assignment_target_hours
            else false
        end as is_assignment_overdue,
        case
            when is_false_alarm then false
            when verification_hours is not null then verification_hours > verification_target_hours
            when status = 'assigned' then assigned_age_hours > verification_target_hours
            else false
        end as is_verification_overdue,
        case
            when is_false_alarm then false
            when hazard_rectification_due_on is not null and rectified_at is not null
                then rectified_date > hazard_rectification_due_on
            when hazard_rectification_due_on is not null and status in ('verified', 'rectifying')
                then status_as_of_date > hazard_rectification_due_on
            when rectification_hours is not null then rectification_hours > rectification_target_hours
            when status in ('verified', 'rectifying') then verified_age_hours > rectification_target_hours
            else false
        end as is_rectification_overdue,
        case
            when is_false_alarm then false
            when closing_hours is not null then closing_hours > closing_target_hours
            when status = 'rectified' then rectified_age_hours > closing_target_hours
            else false
        end as is_closing_overdue,
        (
            {% for name, start_at, end_at in steps %}
            is_{{ name }}_reversed{{ " or" if not loop.last }}
            {% endfor %}
        ) as has_reversed_timestamp
    from timed

),

final as (

    select
        task_id,
        source,
        source_ref_id,
        hazard_id,
        hazard_level,
        hazard_category,
        guardian_scan_id,
        enterprise_id,
        town_code,
        grid_worker_id,
        warning_at,
        created_at,
        assigned_at,
        verified_at,
        rectified_at,
        closed_at,
        created_date,
        {% for name, start_at, end_at in steps %}
        {{ name }}_hours,
        {% endfor %}
        hazard_rectification_due_on as rectification_due_on,
        (
            is_assignment_overdue
            or is_verification_overdue
            or is_rectification_overdue
            or is_closing_overdue
        ) as is_overdue,
        case
            when is_assignment_overdue then 'assignment'
            when is_verification_overdue then 'verification'
            when is_rectification_overdue then 'rectification'
            when is_closing_overdue then 'closing'
        end as overdue_step,
        status as current_status,
        status in ('closed', 'false_alarm') as is_closed,
        has_reversed_timestamp,
        status_as_of_at,
        -- added after the BI contract's first columns: new columns go at the end
        anomaly_id,
        anomaly_rule
    from judged

)

select * from final
