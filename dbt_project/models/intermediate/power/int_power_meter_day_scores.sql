-- The highest rise_score and drop_score of each meter's judged windows on each local day
-- (int_power_readings_scored). The thresholds of a day adapt to the meter: a meter whose load normally
-- swings by 2x within hours (a batch process, a plant that starts when orders come) raises its own
-- thresholds above the seed's rise_ratio and drop_ratio, so its ordinary days do not warn (int_power_anomaly_intervals).
-- Incremental: rebuilds the days int_power_readings_scored rebuilt since (changed_dates).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ delete_build_dates(power_model_dates()) }}",
        indexes=[{'columns': ['meter_id', 'reading_date'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

with scored as (

    select * from {{ ref('int_power_readings_scored') }}
    where {{ in_build_dates('reading_date', build_dates) }}

),

final as (

    select
        meter_id,
        reading_date,
        max(rise_score) as max_rise_score,
        max(drop_score) as max_drop_score,
        count(rise_score) as judged_windows,
        {{ built_at() }} as _built_at
    from scored
    group by meter_id, reading_date

)

select * from final
