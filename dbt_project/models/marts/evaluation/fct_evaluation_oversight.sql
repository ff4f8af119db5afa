-- Safety-evaluation oversight, one row per project: stage timings (contract -> site visit -> report), the
-- check-ins' GPS distance from the site, face match, and the misconduct flags (remote evaluation, low
-- face match, one evaluator at overlapping distant sites). Thresholds: seed evaluation_oversight_thresholds.
-- A table, not incremental: projects move through their stages for weeks.

with projects as (

    select * from {{ ref('stg_yjj__evaluation_projects') }}

),

checkins as (

    select * from {{ ref('int_site_checkins_located') }}

),

overlapping_pairs as (

    select * from {{ ref('int_site_checkins_overlapping') }}

),

overlapping_checkins as (

    select distinct checkin_id from overlapping_pairs

),

checkins_flagged as (

    select
        checkins.*,
        overlapping_checkins.checkin_id is not null as has_overlapping_distant_site
    from checkins
    left join overlapping_checkins
        on checkins.checkin_id = overlapping_checkins.checkin_id

),

per_project_checkins as (

    select
        project_id,
        count(*) as checkin_count,
        count(distinct evaluator_id) as checked_in_evaluator_count,
        min(checked_in_at) as first_checked_in_at,
        min(distance_from_site_km) as min_checkin_distance_km,
        max(distance_from_site_km) as max_checkin_distance_km,
        max(face_match_score) as best_face_match_score,
        min(face_match_score) as worst_face_match_score,
        bool_or(is_lead_evaluator) as has_lead_evaluator_checkin,
        bool_or(is_remote_checkin) as is_remote_evaluation,
        bool_or(is_low_face_match) as has_low_face_match,
        bool_or(has_overlapping_distant_site) as has_overlapping_distant_sites
    from checkins_flagged
    group by project_id

),

stage_timings as (

    select
        projects.*,
        coalesce(site_visit_at < contracted_at, false) as is_site_visit_before_contract,
        coalesce(report_submitted_at < site_visit_at, false) as is_report_before_site_visit,
        coalesce(report_submitted_at < contracted_at, false) as is_report_before_contract,
        case
            when site_visit_at >= contracted_at
                then cast({{ seconds_between('contracted_at', 'site_visit_at') }} as double precision) / 3600.0
        end as contract_to_site_visit_hours,
        case
            when report_submitted_at >= site_visit_at
                then cast({{ seconds_between('site_visit_at', 'report_submitted_at') }} as double precision) / 3600.0
        end as site_visit_to_report_hours,
        case
            when report_submitted_at >= contracted_at
                then cast({{ seconds_between('contracted_at', 'report_submitted_at') }} as double precision) / 3600.0
        end as contract_to_report_hours
    from projects

),

final as (

    select
        stage_timings.project_id,
        stage_timings.agency_id,
        stage_timings.enterprise_id,
        stage_timings.lead_evaluator_id,
        stage_timings.project_type,
        stage_timings.stage as current_stage,
        stage_timings.contracted_at,
        stage_timings.site_visit_at,
        stage_timings.report_submitted_at,
        stage_timings.contracted_date,
        stage_timings.contract_to_site_visit_hours,
        stage_timings.site_visit_to_report_hours,
        stage_timings.contract_to_report_hours,
        coalesce(per_project_checkins.checkin_count, 0) as checkin_count,
        coalesce(per_project_checkins.checked_in_evaluator_count, 0) as checked_in_evaluator_count,
        per_project_checkins.first_checked_in_at,
        per_project_checkins.min_checkin_distance_km,
        per_project_checkins.max_checkin_distance_km,
        per_project_checkins.best_face_match_score,
        per_project_checkins.worst_face_match_score,
        coalesce(per_project_checkins.has_lead_evaluator_checkin, false) as has_lead_evaluator_checkin,
        coalesce(per_project_checkins.is_remote_evaluation, false) as is_remote_evaluation,
        coalesce(per_project_checkins.has_low_face_match, false) as has_low_face_match,
        coalesce(per_project_checkins.has_overlapping_distant_sites, false) as has_overlapping_distant_sites,
        (
            stage_timings.is_site_visit_before_contract
            or stage_timings.is_report_before_site_visit
            or stage_timings.is_report_before_contract
        ) as has_reversed_timestamp
    from stage_timings
    left join per_project_checkins
        on stage_timings.project_id = per_project_checkins.project_id

)

select * from final
