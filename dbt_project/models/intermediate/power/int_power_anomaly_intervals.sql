-- Every 15-minute interval (or cable reading) that meets a power rule, one row per subject (meter or
-- cable), rule, direction and interval, with what it measured against what (seed anomaly_thresholds):
--   overload               a usable reading >= load_ratio x contracted capacity;
--   suspension_violation   a usable reading > load_ratio x capacity while a suspension order is in force;
--   surge                  a surge step and the reading after it (int_power_readings_scored.is_surge_step);
--   abnormal_fluctuation   the window_intervals of a window whose rise_score (or drop_score) exceeds the
--                          meter's threshold of the day (int_power_meter_day_thresholds); and the
--                          peak_intervals of a 1-hour mean above peak_ratio x the lookback's highest 1-hour
--                          mean (a new peak);
--   cable_over_temperature a cable reading >= temperature_c.
-- int_power_anomaly_events joins consecutive intervals into events. Enterprises without a contracted
-- capacity cannot be judged for overload or suspension_violation: fct_power_data_quality reports them.
-- Incremental (replace_build_dates, by reading_date): a build replaces the rows of the days whose scores
-- or cable readings changed since, and of the day after each (a window of the evening flags intervals after
-- midnight); see power_model_dates.

{%- set build_dates = power_model_dates() %}
{%- set window = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'window_intervals', 8) | int %}
{%- set peak_intervals = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'peak_intervals', 4) | int %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['reading_date']}, {'columns': ['subject_id', 'interval_at']}] if target.type == 'postgres' else [],
    )
}}

{%- set window_start_dates = widen_dates(build_dates, before=1) %}

with scored as (

    select * from {{ ref('int_power_readings_scored') }}
    where {{ in_build_dates('reading_date', window_start_dates) }}

),

thresholds as (

    select * from {{ ref('int_power_meter_day_thresholds') }}
    where {{ in_build_dates('reading_date', window_start_dates) }}

),

cable_readings as (

    select * from {{ ref('stg_power__cable_temperature_readings') }}
    where {{ in_build_dates('reading_date', window_start_dates) }}
        and {{ in_build_days('reading_at', window_start_dates) }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        max(case when rule = 'overload' and parameter = 'load_ratio' then value end) as overload_load_ratio,
        max(case when rule = 'suspension_violation' and parameter = 'load_ratio' then value end)
            as suspension_load_ratio,
        max(case when rule = 'abnormal_fluctuation' and parameter = 'rise_ratio' then value end) as rise_ratio,
        max(case when rule = 'abnormal_fluctuation' and parameter = 'drop_ratio' then value end) as drop_ratio,
        max(case when rule = 'abnormal_fluctuation' and parameter = 'peak_ratio' then value end) as peak_ratio,
        max(case when rule = 'surge' and parameter = 'step_ratio' then value end) as step_ratio,
        max(case when rule = 'cable_over_temperature' and parameter = 'temperature_c' then value end)
            as cable_temperature_c
    from anomaly_thresholds

),

offsets as (

    select interval_offset from generate_series(0, {{ [window, peak_intervals] | max - 1 }}) as offset_numbers (interval_offset)

),

directions as (

    select 'rise' as direction
    union all
    select 'drop' as direction

),

level_intervals as (

    select
        scored.meter_id as subject_id,
        scored.enterprise_id,
        'overload' as rule,
        'rise' as direction,
        scored.reading_at as interval_at,
        scored.load_kw as observed_value,
        settings.overload_load_ratio * scored.contracted_capacity_kw as threshold_value,
        scored.load_kw / (settings.overload_load_ratio * scored.contracted_capacity_kw) as magnitude,
        scored.contracted_capacity_kw as reference_value,
        cast(null as double precision) as before_value,
        cast(null as double precision) as after_value,
        scored.previous_read_at
    from scored
    cross join settings
    where scored.reading_state = 'usable'
        and scored.contracted_capacity_kw > 0
        and scored.load_kw >= settings.overload_load_ratio * scored.contracted_capacity_kw

    union all

    select
        scored.meter_id as subject_id,
        scored.enterprise_id,
        'suspension_violation' as rule,
        'rise' as direction,
        scored.reading_at as interval_at,
        scored.load_kw as observed_value,
        settings.suspension_load_ratio * scored.contracted_capacity_kw as threshold_value,
        scored.load_kw / (settings.suspension_load_ratio * scored.contracted_capacity_kw) as magnitude,
        scored.contracted_capacity_kw as reference_value,
        null as before_value,
        null as after_value,
        scored.previous_read_at
    from scored
    cross join settings
    where scored.reading_state = 'usable'
        and scored.is_under_suspension
        and scored.contracted_capacity_kw > 0
        and scored.load_kw > settings.suspension_load_ratio * scored.contracted_capacity_kw

),

surge_intervals as (

    select
        scored.meter_id as subject_id,
        scored.enterprise_id,
        'surge' as rule,
        'rise' as direction,
        scored.reading_at + offsets.interval_offset * interval '15 minutes' as interval_at,
        scored.load_kw as observed_value,
        settings.step_ratio * scored.previous_load_kw as threshold_value,
        scored.load_kw / (settings.step_ratio * scored.previous_load_kw) as magnitude,
        scored.previous_load_kw as reference_value,
        scored.lookback_high_kw as before_value,
        scored.usual_step_near_kw as after_value,
        cast(null as timestamp with time zone) as previous_read_at
    from scored
    cross join settings
    inner join offsets
        on offsets.interval_offset < 2
    where scored.is_surge_step

),

window_intervals as (

    select
        scored.meter_id as subject_id,
        scored.enterprise_id,
        'abnormal_fluctuation' as rule,
        directions.direction,
        scored.reading_at + offsets.interval_offset * interval '15 minutes' as interval_at,
        scored.window_mean_kw as observed_value,
        case
            when directions.direction = 'rise'
                then scored.window_mean_kw * exp(thresholds.rise_threshold - scored.rise_score)
            else scored.window_mean_kw * exp(scored.drop_score - thresholds.drop_threshold)
        end as threshold_value,
        case
            when directions.direction = 'rise' then exp(scored.rise_score) / settings.rise_ratio
            else exp(scored.drop_score) / settings.drop_ratio
        end as magnitude,
        scored.window_usual_kw as reference_value,
        scored.before_mean_kw as before_value,
        scored.after_mean_kw as after_value,
        cast(null as timestamp with time zone) as previous_read_at
    from scored
    cross join settings
    inner join thresholds
        on scored.meter_id = thresholds.meter_id
        and scored.reading_date = thresholds.reading_date
    cross join directions
    inner join offsets
        on offsets.interval_offset < {{ window }}
    where (directions.direction = 'rise' and scored.rise_score > thresholds.rise_threshold)
        or (directions.direction = 'drop' and scored.drop_score > thresholds.drop_threshold)

),

peak_intervals as (

    select
        scored.meter_id as subject_id,
        scored.enterprise_id,
        'abnormal_fluctuation' as rule,
        'rise' as direction,
        scored.reading_at - offsets.interval_offset * interval '15 minutes' as interval_at,
        scored.hour_mean_kw as observed_value,
        settings.peak_ratio * scored.lookback_max_hour_mean_kw as threshold_value,
        scored.hour_mean_kw / scored.lookback_max_hour_mean_kw / settings.peak_ratio as magnitude,
        scored.lookback_max_hour_mean_kw as reference_value,
        cast(null as double precision) as before_value,
        cast(null as double precision) as after_value,
        cast(null as timestamp with time zone) as previous_read_at
    from scored
    cross join settings
    inner join offsets
        on offsets.interval_offset < {{ peak_intervals }}
    where scored.is_judged_day
        and scored.lookback_max_hour_mean_kw > 0
        and scored.hour_mean_kw > settings.peak_ratio * scored.lookback_max_hour_mean_kw

),

cable_readings_sequenced as (

    select
        cable_readings.*,
        lag(reading_at) over (partition by cable_id order by reading_at) as previous_reading_at
    from cable_readings

),

cable_intervals as (

    select
        cable_readings.cable_id as subject_id,
        cable_readings.enterprise_id,
        'cable_over_temperature' as rule,
        'rise' as direction,
        cable_readings.reading_at as interval_at,
        cable_readings.temperature_c as observed_value,
        settings.cable_temperature_c as threshold_value,
        cable_readings.temperature_c / settings.cable_temperature_c as magnitude,
        cast(null as double precision) as reference_value,
        cast(null as double precision) as before_value,
        cast(null as double precision) as after_value,
        -- as far back as the day before, as for the meters (int_power_readings_sequenced)
        case
            when {{ local_date('cable_readings.previous_reading_at') }} >= cable_readings.reading_date - 1
                then cable_readings.previous_reading_at
        end as previous_read_at
    from cable_readings_sequenced as cable_readings
    cross join settings
    where cable_readings.temperature_c >= settings.cable_temperature_c

),

flagged as (

    select * from level_intervals
    union all
    select * from surge_intervals
    union all
    select * from window_intervals
    union all
    select * from peak_intervals
    union all
    select * from cable_intervals

),

-- an interval covered by several flagged windows (or a window and a new peak) keeps the strongest
flagged_ranked as (

    select
        flagged.*,
        row_number() over (
            partition by subject_id, rule, direction, interval_at order by magnitude desc, observed_value desc
        ) as strength_rank
    from flagged

),

final as (

    select
        subject_id,
        enterprise_id,
        rule,
        direction,
        interval_at,
        {{ local_date('interval_at') }} as reading_date,
        observed_value,
        threshold_value,
        magnitude,
        reference_value,
        before_value,
        after_value,
        previous_read_at,
        {{ built_at() }} as _built_at
    from flagged_ranked
    where strength_rank = 1
        and {{ in_build_dates(local_date('interval_at'), build_dates) }}

)

select * from final
