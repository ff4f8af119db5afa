-- Power-safety warnings (DESIGN section 5): one row per warning a grid worker is sent out for. The rules
-- live in the intermediate models (int_power_readings_scored, int_power_anomaly_intervals,
-- int_power_anomaly_events); this is the public contract BI tools and the hazard loop read, rebuilt in
-- full on every build (a few thousand rows a year).

with events as (

    select * from {{ ref('int_power_anomaly_events') }}

),

final as (

    select
        anomaly_id,
        enterprise_id,
        rule,
        started_at,
        ended_at,
        cast(peak_value as numeric(12, 2)) as peak_value,
        cast(threshold as numeric(12, 2)) as threshold,
        severity,
        reason
    from events

)

select * from final
