-- One row per 110/119/120 incident with its response intervals. A unit's status time earlier than a step
-- it must follow is not trusted; an interval whose timestamps are missing or out of order is null and the
-- row is flagged: nothing is guessed. The first unit on scene is the one with the earliest trusted
-- arrival (ties: lowest unit_id); turnout and travel are that unit's own.
-- Incremental (replace_build_dates, by received_date): a build replaces the rows of the dates of the calls
-- and dispatch records loaded since the last build, however old (a department's export of last month, a
-- backfill), and of any date whose incident count differs from the calls staged (a re-delivered batch with
-- fewer calls); see response_model_dates. Its unique key, incident_id, also replaces an incident whose
-- re-delivered call moved to another date.
-- On Postgres, indexed by received_date too: BI tools read the latest day (reports/bi_queries.sql); and built
-- without nested-loop joins (window_query_settings): the dates it rebuilds filter the alerts' staging views,
-- which pick each call's latest version by a window, and Postgres estimates the calls of a list of dates at a
-- few rows; joined to the first arrivals row by row, 60 full-scale days (196,708 incidents) ran for over 6
-- minutes where hash joins take 2 s.

{%- set build_dates = response_model_dates() %}

{{
    config(
        materialized='incremental',
        unique_key='incident_id',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'response_model_dates', 'build_dates_column': 'received_date'},
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['received_date']}] if target.type == 'postgres' else [],
        pre_hook="{{ window_query_settings() }}",
    )
}}

with alerts as (

    select * from {{ ref('int_alerts_unioned') }}

),

dispatch_records as (

    select * from {{ ref('stg_yjj__dispatch_records') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

alerts_to_build as (

    select * from alerts
    where {{ in_build_dates('received_date', build_dates) }}

),

dispatches_to_build as (

    select dispatch_records.*
    from dispatch_records
    inner join alerts_to_build
        on dispatch_records.incident_id = alerts_to_build.incident_id

),

dispatches_compared as (

    select
        incident_id,
        unit_id,
        dispatched_at,
        en_route_at,
        on_scene_at,
        en_route_at is null as is_en_route_missing,
        on_scene_at is null as is_on_scene_missing,
        coalesce(en_route_at < dispatched_at, false) as is_en_route_before_dispatch,
        coalesce(on_scene_at < dispatched_at, false) as is_on_scene_before_dispatch,
        coalesce(on_scene_at < en_route_at, false) as is_on_scene_before_en_route
    from dispatches_to_build

),

dispatches_validated as (

    select
        *,
        (
            is_en_route_before_dispatch
            or is_on_scene_before_dispatch
            or is_on_scene_before_en_route
        ) as has_reversed_timestamp,
        (
            not is_en_route_missing
            and dispatched_at is not null
            and not is_en_route_before_dispatch
            and not is_on_scene_before_en_route
        ) as is_en_route_trusted,
        (
            not is_on_scene_missing
            and dispatched_at is not null
            and not is_on_scene_before_dispatch
            and not is_on_scene_before_en_route
        ) as is_on_scene_trusted
    from dispatches_compared

),

unit_intervals as (

    select
        *,
        case
            when is_en_route_trusted
                then cast({{ seconds_between('dispatched_at', 'en_route_at') }} as double precision)
        end as turnout_seconds,
        case
            when is_en_route_trusted and is_on_scene_trusted
                then cast({{ seconds_between('en_route_at', 'on_scene_at') }} as double precision)
        end as travel_seconds
    from dispatches_validated

),

arrivals_ranked as (

    select
        incident_id,
        unit_id,
        is_en_route_missing,
        turnout_seconds,
        travel_seconds,
        row_number() over (
            partition by incident_id
            order by on_scene_at, unit_id
        ) as arrival_rank
    from unit_intervals
    where is_on_scene_trusted

),

first_on_scene as (

    select
        incident_id,
        unit_id,
        is_en_route_missing,
        turnout_seconds,
        travel_seconds
    from arrivals_ranked
    where arrival_rank = 1

),

per_incident as (

    select
        incident_id,
        count(*) as units_dispatched,
        min(dispatched_at) as first_dispatched_at,
        min(case when is_en_route_trusted then en_route_at end) as first_en_route_at,
        min(case when is_on_scene_trusted then on_scene_at end) as first_on_scene_at,
        bool_or(is_on_scene_missing) as has_unit_without_on_scene,
        bool_or(has_reversed_timestamp) as has_reversed_unit_timestamp
    from unit_intervals
    group by incident_id

),

joined as (

    select
        alerts.incident_id,
        alerts.channel,
        alerts.event_type_code,
        alerts.town_code,
        alerts.received_at,
        alerts.received_date,
        coalesce(event_types.event_category, 'unknown') as event_category,
        per_incident.first_dispatched_at,
        per_incident.first_en_route_at,
        per_incident.first_on_scene_at,
        first_on_scene.unit_id as first_on_scene_unit_id,
        first_on_scene.turnout_seconds as first_on_scene_turnout_seconds,
        first_on_scene.travel_seconds as first_on_scene_travel_seconds,
        coalesce(per_incident.units_dispatched, 0) as units_dispatched,
        coalesce(per_incident.has_unit_without_on_scene, false) as has_unit_without_on_scene,
        coalesce(per_incident.has_reversed_unit_timestamp, false) as has_reversed_unit_timestamp,
        coalesce(first_on_scene.is_en_route_missing, false) as is_first_on_scene_en_route_missing,
        coalesce(per_incident.first_dispatched_at < alerts.received_at, false) as is_dispatch_before_received,
        coalesce(per_incident.first_on_scene_at < alerts.received_at, false) as is_on_scene_before_received
    from alerts_to_build as alerts
    left join per_incident
        on alerts.incident_id = per_incident.incident_id
    left join first_on_scene
        on alerts.incident_id = first_on_scene.incident_id
    left join event_types
        on alerts.event_type_code = event_types.event_type_code

),

incident_intervals as (

    select
        *,
        units_dispatched > 0 as has_dispatch,
        case
            when not is_dispatch_before_received
                then cast({{ seconds_between('received_at', 'first_dispatched_at') }} as double precision)
        end as alarm_handling_seconds,
        case
            when not is_on_scene_before_received
                then cast({{ seconds_between('received_at', 'first_on_scene_at') }} as double precision)
        end as response_seconds
    from joined

),

final as (

    select
        incident_id,
        channel,
        event_type_code,
        town_code,
        received_at,
        first_dispatched_at,
        first_en_route_at,
        first_on_scene_at,
        alarm_handling_seconds,
        first_on_scene_turnout_seconds as turnout_seconds,
        first_on_scene_travel_seconds as travel_seconds,
        response_seconds,
        received_date,
        event_category,
        first_on_scene_unit_id,
        units_dispatched,
        has_dispatch,
        (
            has_dispatch
            and (
                (first_on_scene_at is null and has_unit_without_on_scene)
                or is_first_on_scene_en_route_missing
            )
        ) as has_missing_timestamp,
        (
            has_reversed_unit_timestamp
            or is_dispatch_before_received
            or is_on_scene_before_received
        ) as has_reversed_timestamp,
        {{ built_at() }} as _built_at
    from incident_intervals

)

select * from final
