-- Each on-site check-in with its distance from the project's site (haversine on WGS-84) and whether it
-- was made too far away to be on site (seed evaluation_oversight_thresholds: remote_checkin_km) or with a
-- face match too low to be the evaluator (min_face_match_score).

with checkins as (

    select * from {{ ref('stg_yjj__site_checkins') }}

),

projects as (

    select * from {{ ref('stg_yjj__evaluation_projects') }}

),

thresholds as (

    select * from {{ ref('evaluation_oversight_thresholds') }}

),

limits as (

    select
        max(case when parameter = 'remote_checkin_km' then value end) as remote_checkin_km,
        max(case when parameter = 'min_face_match_score' then value end) as min_face_match_score
    from thresholds

),

located as (

    select
        checkins.checkin_id,
        checkins.project_id,
        checkins.evaluator_id,
        checkins.checked_in_at,
        checkins.checked_in_date,
        checkins.lat,
        checkins.lon,
        checkins.face_match_score,
        checkins.device_id,
        projects.site_lat,
        projects.site_lon,
        projects.lead_evaluator_id,
        {{ haversine_km('projects.site_lat', 'projects.site_lon', 'checkins.lat', 'checkins.lon') }}
            as distance_from_site_km
    from checkins
    left join projects
        on checkins.project_id = projects.project_id

),

final as (

    select
        located.*,
        coalesce(located.distance_from_site_km > limits.remote_checkin_km, false) as is_remote_checkin,
        coalesce(located.face_match_score < limits.min_face_match_score, false) as is_low_face_match,
        coalesce(located.evaluator_id = located.lead_evaluator_id, false) as is_lead_evaluator
    from located
    cross join limits

)

select * from final
