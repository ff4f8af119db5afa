-- The highest rise_score and drop_score of each meter's judged windows on each local day
-- (int_power_readings_scored). The thresholds of a day adapt to the meter: a meter whose load normally
-- swings by 2x within hours (a batch process, a plant that starts when orders come) raises its own
-- thresholds above the seed's rise_ratio and drop_ratio, so its ordinary days do not warn (int_power_anomaly_intervals).
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- int_power_readings_scored rebuilt since (power_model_dates).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        indexes=[{'columns': ['meter_id', 'reading_date'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

with scored as (

    select * from {{ ref('int_power_readings_scored') }}
    where {{ in_rebuild('reading_date', build_dates) }}

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
