-- Response times per local day, town, channel and event category: incident counts, p50/p90 of each
-- interval and the share of measured intervals within the channel's target (seed response_targets).
-- Incremental (replace_build_dates, by received_date): a build replaces whole days, those
-- fct_incident_response rebuilt since the last build and any whose counts differ from it (an incident moved
-- to another date); see response_model_dates.

{%- set intervals = ['alarm_handling', 'turnout', 'travel', 'response'] %}
{%- set build_dates = response_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'response_model_dates', 'build_dates_column': 'received_date'},
        on_schema_change='append_new_columns',
    )
}}

with incidents as (

    select * from {{ ref('fct_incident_response') }}

),

targets as (

    select * from {{ ref('response_targets') }}

),

incidents_to_aggregate as (

    select * from incidents
    where {{ in_build_dates('received_date', build_dates) }}

),

channel_targets as (

    select
        {% for interval in intervals %}
        max(case when interval_name = '{{ interval }}' then target_seconds end)
            as {{ interval }}_target_seconds,
        {% endfor %}
        channel
    from targets
    group by channel

),

scored as (

    select
        incidents.received_date,
        incidents.town_code,
        incidents.channel,
        incidents.event_category,
        {% for interval in intervals %}
        incidents.{{ interval }}_seconds,
        channel_targets.{{ interval }}_target_seconds,
        case
            when incidents.{{ interval }}_seconds is null or channel_targets.{{ interval }}_target_seconds is null
                then null
            when incidents.{{ interval }}_seconds <= channel_targets.{{ interval }}_target_seconds
                then 1.0
            else 0.0
        end as {{ interval }}_within_target,
        {% endfor %}
        incidents.has_dispatch
    from incidents_to_aggregate as incidents
    left join channel_targets
        on incidents.channel = channel_targets.channel

),

aggregated as (

    select
        received_date,
        town_code,
        channel,
        event_category,
        count(*) as incident_count,
        count(case when has_dispatch then 1 end) as dispatched_incident_count,
        {% for interval in intervals %}
        max({{ interval }}_target_seconds) as {{ interval }}_target_seconds,
        count({{ interval }}_seconds) as {{ interval }}_measured_count,
        cast({{ continuous_percentile(interval ~ '_seconds', 0.5) }} as double precision)
            as {{ interval }}_p50_seconds,
        cast({{ continuous_percentile(interval ~ '_seconds', 0.9) }} as double precision)
            as {{ interval }}_p90_seconds,
        cast(avg({{ interval }}_within_target) as double precision)
            as {{ interval }}_within_target_share,
        {% endfor %}
        {{ built_at() }} as _built_at
    from scored
    group by
        received_date,
        town_code,
        channel,
        event_category

),

final as (

    select * from aggregated

)

select * from final
