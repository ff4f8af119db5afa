-- The usual load of a meter in each 15-minute slot of a local day, one row per meter and day with lists of
-- the 96 slots: over the day's similar days (int_power_meter_day_context.similar_dates, at most similar_days
-- of them), the median of their usable loads in the slot (usual_loads), the largest step (load(slot) -
-- load(slot - 1)) any of them made in the slot (usual_steps), and how many had a load in it
-- (similar_readings); see the macro slot_profiles. Only days with min_similar_days similar days get a
-- profile (seed anomaly_thresholds, rule baseline). One row a day, not a row per slot: a daily build writes
-- 14,355 rows at full scale, not 1.4 M (on Postgres, with their indexes, most of the model's time).
-- Cost: similar_days x 96 values per meter and day built (11 M at full scale), whatever the history.
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- int_power_meter_day_context rebuilt since (power_model_dates). A table of another shape (the rows per slot
-- of earlier versions) is not merged into: the build fails and asks for --full-refresh (on_schema_change).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='fail',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings() }}",
        indexes=[
            {'columns': ['meter_id', 'reading_date'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

with day_context as (

    select * from {{ ref('int_power_meter_day_context') }}
    where {{ in_rebuild('reading_date', build_dates) }}

),

meter_days as (

    select * from {{ ref('int_power_meter_days') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select cast(max(case when parameter = 'min_similar_days' then value end) as integer) as min_similar_days
    from anomaly_thresholds
    where rule = 'baseline'

),

similar_days as (

    select
        similar_day_dates.meter_id,
        similar_day_dates.reading_date,
        meter_days.loads,
        meter_days.steps
    from (
        select
            day_context.meter_id,
            day_context.reading_date,
            unnest(day_context.similar_dates) as similar_date
        from day_context
        cross join settings
        where day_context.similar_days >= settings.min_similar_days
    ) as similar_day_dates
    inner join meter_days
        on similar_day_dates.meter_id = meter_days.meter_id
        and similar_day_dates.similar_date = meter_days.reading_date

),

final as (

    select
        slot_profiles.meter_id,
        slot_profiles.reading_date,
        slot_profiles.usual_loads,
        slot_profiles.usual_steps,
        slot_profiles.similar_readings,
        {{ built_at() }} as _built_at
    from ({{ slot_profiles('similar_days') }}) as slot_profiles

)

select * from final
