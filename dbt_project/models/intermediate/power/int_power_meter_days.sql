-- One row per meter and local day: the day's load profile as lists, what kind of day it is, and how much
-- of it was read. The baselines (int_power_meter_day_context, int_power_usual_profiles) read these short
-- rows instead of the readings, so that a day's build reads lookback_days x meters rows (0.8 M at full
-- scale), whatever the history.
--   loads[96]          the usable load of each 15-minute slot (null: missing, offline, implausible, or a
--                      catch-up reading after a gap), in kW;
--   steps[96]          load(slot) - load(slot - 1) where both were read;
--   hourly_loads[24]   the mean load of each local hour (null with fewer than 2 usable readings);
--   hourly_highs[24]   the highest usable reading of each local hour;
--   day_high_kw        the 90th percentile of the hourly loads: the day's working level;
--   max_hour_mean_kw   the highest 1-hour mean (4 consecutive slots, at least 3 read) of the day.
-- day_kind: working_day, saturday, sunday or holiday from the seed calendar_days (China's statutory
-- holidays and adjusted working days, 调休) and the weekday.
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- int_power_readings_sequenced rebuilt since (power_model_dates).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings(hash_joins=true) }}",
        indexes=[
            {'columns': ['meter_id', 'reading_date'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}
    where {{ in_rebuild('reading_date', build_dates) }}

),

calendar_days as (

    select * from {{ ref('calendar_days') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        cast(max(case when parameter = 'complete_day_readings' then value end) as integer)
            as complete_day_readings
    from anomaly_thresholds
    where rule = 'baseline'

),

meter_days as (

    select
        meter_id,
        reading_date,
        max(enterprise_id) as enterprise_id,
        count(*) as readings,
        sum(case when reading_state = 'offline' then 1 else 0 end) as offline_readings,
        sum(case when reading_state = 'implausible' then 1 else 0 end) as implausible_readings
    from readings
    group by meter_id, reading_date

),

slots as (

    select slot_of_day from generate_series(0, 95) as slot_numbers (slot_of_day)

),

slot_loads as (

    select
        meter_days.meter_id,
        meter_days.reading_date,
        slots.slot_of_day,
        case
            when readings.reading_state = 'usable' and not readings.is_after_gap then readings.load_kw
        end as load_kw,
        readings.step_kw
    from meter_days
    cross join slots
    left join readings
        on meter_days.meter_id = readings.meter_id
        and meter_days.reading_date = readings.reading_date
        and slots.slot_of_day = readings.slot_of_day

),

slot_hour_means as (

    select
        slot_loads.*,
        cast(floor(slot_of_day / 4) as integer) as hour_of_day,
        case
            when count(load_kw) over last_hour >= 3 then avg(load_kw) over last_hour
        end as hour_mean_kw
    from slot_loads
    window last_hour as (
        partition by meter_id, reading_date order by slot_of_day rows between 3 preceding and current row
    )

),

profiles as (

    select
        meter_id,
        reading_date,
        {{ ordered_list('load_kw', 'slot_of_day') }} as loads,
        {{ ordered_list('step_kw', 'slot_of_day') }} as steps,
        count(load_kw) as usable_readings,
        avg(load_kw) as day_mean_kw,
        max(hour_mean_kw) as max_hour_mean_kw
    from slot_hour_means
    group by meter_id, reading_date

),

hours as (

    select
        meter_id,
        reading_date,
        hour_of_day,
        case when count(load_kw) >= 2 then avg(load_kw) end as hour_load_kw,
        max(load_kw) as hour_high_kw
    from slot_hour_means
    group by meter_id, reading_date, hour_of_day

),

hour_profiles as (

    select
        meter_id,
        reading_date,
        {{ ordered_list('hour_load_kw', 'hour_of_day') }} as hourly_loads,
        {{ ordered_list('hour_high_kw', 'hour_of_day') }} as hourly_highs,
        {{ continuous_percentile('hour_load_kw', 0.9) }} as day_high_kw
    from hours
    group by meter_id, reading_date

),

final as (

    select
        meter_days.meter_id,
        meter_days.reading_date,
        meter_days.enterprise_id,
        {{ day_kind('meter_days.reading_date', 'calendar_days.day_kind') }} as day_kind,
        meter_days.readings,
        profiles.usable_readings,
        meter_days.offline_readings,
        meter_days.implausible_readings,
        profiles.usable_readings >= settings.complete_day_readings as is_complete,
        profiles.loads,
        profiles.steps,
        hour_profiles.hourly_loads,
        hour_profiles.hourly_highs,
        hour_profiles.day_high_kw,
        profiles.day_mean_kw,
        profiles.max_hour_mean_kw,
        {{ built_at() }} as _built_at
    from meter_days
    cross join settings
    inner join profiles
        on meter_days.meter_id = profiles.meter_id
        and meter_days.reading_date = profiles.reading_date
    inner join hour_profiles
        on meter_days.meter_id = hour_profiles.meter_id
        and meter_days.reading_date = hour_profiles.reading_date
    left join calendar_days
        on meter_days.reading_date = calendar_days.calendar_date

)

select * from final
