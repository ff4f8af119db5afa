-- Each 15-minute power reading with its local day and slot, its state and the step from the meter's
-- interval before. What the rules may use of a reading is decided here, once:
--   usable       a reading of the load;
--   offline      load 0 with no voltage: the meter (or the supply) is off: a data problem (meter_offline),
--                never a drop in production;
--   implausible  more than max_plausible_ratio x the contracted capacity (seed anomaly_thresholds,
--                data_quality): a connection cannot carry it, the meter misread (capacity as of the build).
-- is_after_gap: the interval before has no usable reading (missing or offline). That first reading back
-- may carry the energy of the gap (a catch-up reading): the relative rules (abnormal_fluctuation, surge)
-- ignore it; overload and suspension_violation, which judge the level itself, do not.
-- previous_read_at: the meter's last reading before this one that is not offline, on the same local day or
-- the day before: two flagged readings with only missing or offline readings between them can be one event.
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the local days
-- of the readings loaded since its last build (however old) and of the day after each (whose first reading
-- steps from the last of the day before), for the meters whose readings came (every meter of a day's batch;
-- of the day before, the meters with late readings); see power_model_dates, changed_dates, rebuild_sets.sql.

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings() }}",
        indexes=[
            {'columns': ['meter_id', 'reading_at'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- the build's meter days and the day before each: that day is read only for the first readings of the
    build's (their step, their previous_read_at) #}
{%- set context_dates = widen_rebuild(build_dates, before=1) %}

with readings as (

    select * from {{ ref('stg_power__power_load_readings') }}

),

safety_profiles as (

    select * from {{ ref('stg_yjj__enterprise_safety_profiles') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select max(case when parameter = 'max_plausible_ratio' then value end) as max_plausible_ratio
    from anomaly_thresholds
    where rule = 'data_quality'

),

readings_in_context as (

    select
        readings.meter_id,
        readings.enterprise_id,
        readings.reading_at,
        readings.reading_date,
        readings.load_kw,
        readings.voltage_v,
        safety_profiles.contracted_capacity_kw,
        case
            when readings.load_kw = 0 and coalesce(readings.voltage_v, 0) = 0 then 'offline'
            when readings.load_kw > settings.max_plausible_ratio * safety_profiles.contracted_capacity_kw
                then 'implausible'
            else 'usable'
        end as reading_state
    from readings
    cross join settings
    left join safety_profiles
        on readings.enterprise_id = safety_profiles.enterprise_id
    where readings.load_kw is not null
        and {{ in_rebuild('readings.reading_date', context_dates, 'readings.meter_id') }}
        and {{ in_build_days('readings.reading_at', rebuild_dates(context_dates)) }}

),

-- of a day before a build date, a meter's last reading and its last reading not offline stand in for the
-- whole day: the lags and the running max of the build date's readings are the same, and the window sorts
-- the build dates' readings, not a day more (a daily build's window is one day, not two)
readings_windowed as (

    {{ readings_with_day_ends('readings_in_context', build_dates, context_dates, with_last_read=true) }}

),

readings_with_previous as (

    select
        readings_windowed.*,
        {{ local_slot('reading_at') }} as slot_of_day,
        lag(reading_at) over by_meter as previous_reading_at,
        lag(load_kw) over by_meter as previous_reading_load_kw,
        lag(reading_state) over by_meter as previous_reading_state,
        max(case when reading_state <> 'offline' then reading_at end) over by_meter as previous_read_at
    from readings_windowed
    -- one window for the lags and the running max (lags ignore the frame): one pass over the readings, not
    -- two (on Postgres each window definition is a pass of its own: 4 s of 15 for 3 M readings)
    window by_meter as (
        partition by meter_id order by reading_at rows between unbounded preceding and 1 preceding
    )

),

final as (

    select
        meter_id,
        enterprise_id,
        reading_at,
        reading_date,
        slot_of_day,
        load_kw,
        voltage_v,
        contracted_capacity_kw,
        reading_state,
        coalesce(
            previous_reading_at <> reading_at - interval '15 minutes' or previous_reading_state = 'offline',
            true
        ) as is_after_gap,
        case
            when previous_reading_at = reading_at - interval '15 minutes' and previous_reading_state = 'usable'
                then previous_reading_load_kw
        end as previous_load_kw,
        case
            when previous_reading_at = reading_at - interval '15 minutes' and previous_reading_state = 'usable'
                and reading_state = 'usable'
                then load_kw - previous_reading_load_kw
        end as step_kw,
        -- as far back as the day before: what a build of one day reads (full builds agree)
        case when {{ local_date('previous_read_at') }} >= reading_date - 1 then previous_read_at end
            as previous_read_at,
        {{ built_at() }} as _built_at
    from readings_with_previous
    where {{ in_rebuild('reading_date', build_dates) }}

)

select * from final
