-- The usual load of a meter in each 15-minute slot of a local day: over the day's similar days
-- (int_power_meter_day_context.similar_dates, at most similar_days of them), the median of their usable
-- loads in the slot, and the largest step (load(slot) - load(slot - 1)) any of them made in the slot.
-- Only days with min_similar_days similar days get a profile (seed anomaly_thresholds, rule baseline).
-- Cost: similar_days x 96 values per meter and day built (11 M at full scale), whatever the history.
-- Incremental (replace_build_dates, by reading_date): a build replaces the rows of the days
-- int_power_meter_day_context rebuilt since (power_model_dates).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings() }}",
        indexes=[
            {'columns': ['meter_id', 'reading_date', 'slot_of_day'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

with day_context as (

    select * from {{ ref('int_power_meter_day_context') }}
    where {{ in_build_dates('reading_date', build_dates) }}

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

similar_day_dates as (

    select
        meter_id,
        reading_date,
        unnest(similar_dates) as similar_date
    from day_context
    cross join settings
    where day_context.similar_days >= settings.min_similar_days

),

slots as (

    select slot_of_day from generate_series(0, 95) as slot_numbers (slot_of_day)

),

similar_slots as (

    select
        similar_day_dates.meter_id,
        similar_day_dates.reading_date,
        slots.slot_of_day,
        meter_days.loads[slots.slot_of_day + 1] as load_kw,
        meter_days.steps[slots.slot_of_day + 1] as step_kw
    from similar_day_dates
    inner join meter_days
        on similar_day_dates.meter_id = meter_days.meter_id
        and similar_day_dates.similar_date = meter_days.reading_date
    cross join slots

),

-- the median of a slot's loads (continuous: the mean of the two middle ones of an even count) from their
-- ranks, not a percentile aggregate: on DuckDB an aggregate that holds every group's values at once cannot
-- spill, and a backfill's build holds millions of slots (7 half-scale days, 4.8 M: out of memory at 1GB);
-- a window's sort spills
ranked_slots as (

    select
        similar_slots.*,
        row_number() over (
            partition by meter_id, reading_date, slot_of_day order by load_kw nulls last
        ) as load_rank,
        count(load_kw) over (partition by meter_id, reading_date, slot_of_day) as load_count
    from similar_slots

),

final as (

    select
        meter_id,
        reading_date,
        slot_of_day,
        avg(
            case
                when load_rank in (
                        cast(floor((load_count + 1) / 2.0) as integer), cast(ceiling((load_count + 1) / 2.0) as integer)
                    )
                    then load_kw
            end
        ) as usual_load_kw,
        max(step_kw) as usual_step_kw,
        count(load_kw) as similar_readings,
        {{ built_at() }} as _built_at
    from ranked_slots
    group by meter_id, reading_date, slot_of_day

)

select * from final
