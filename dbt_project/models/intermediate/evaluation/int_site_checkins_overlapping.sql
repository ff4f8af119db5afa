-- Pairs of check-ins by one evaluator at two different projects that are farther apart than
-- overlapping_sites_km and closer in time than overlapping_window_minutes (seed
-- evaluation_oversight_thresholds): nobody can be at both. One row per check-in and conflicting check-in.

with checkins as (

    select * from {{ ref('stg_yjj__site_checkins') }}

),

thresholds as (

    select * from {{ ref('evaluation_oversight_thresholds') }}

),

limits as (

    select
        max(case when parameter = 'overlapping_sites_km' then value end) as overlapping_sites_km,
        max(case when parameter = 'overlapping_window_minutes' then value end) as overlapping_window_minutes
    from thresholds

),

paired as (

    select
        checkin.checkin_id,
        checkin.project_id,
        checkin.evaluator_id,
        checkin.checked_in_at,
        other.checkin_id as other_checkin_id,
        other.project_id as other_project_id,
        other.checked_in_at as other_checked_in_at,
        abs(cast({{ seconds_between('checkin.checked_in_at', 'other.checked_in_at') }} as double precision)) / 60.0
            as minutes_apart,
        {{ haversine_km('checkin.lat', 'checkin.lon', 'other.lat', 'other.lon') }} as km_apart
    from checkins as checkin
    inner join checkins as other
        on checkin.evaluator_id = other.evaluator_id
        and checkin.project_id <> other.project_id
        and checkin.checkin_id <> other.checkin_id

),

final as (

    select paired.*
    from paired
    cross join limits
    where paired.minutes_apart <= limits.overlapping_window_minutes
        and paired.km_apart > limits.overlapping_sites_km

)

select * from final
