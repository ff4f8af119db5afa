-- The largest usual step of every meter: the step_percentile (seed anomaly_thresholds, surge) of the
-- meter's 15-minute load steps, load(t) - load(t-1), over the baseline_days local days before
-- baseline_date. A surge's step must exceed it.
-- The percentile is interpolated like quantile_cont / percentile_cont (macro percentile_by_group); its
-- fraction is read from the seed when the model runs (DuckDB's quantile_cont takes only a constant).
-- Cost: incremental like int_power_slot_baselines, baseline_days x meters x 95 steps per new date.
-- Runs after int_power_slot_baselines, never beside it: both aggregate baseline_days of readings
-- (38.6 M at full scale) and, sharing the warehouse's memory bound, they spilled to disk and took
-- 40 s each at day 13 of the bench's history.
-- depends_on: {{ ref('int_power_slot_baselines') }}

{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'baseline_date'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['baseline_date', 'meter_id'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{#- Only dates after the latest built: a baseline reads the days before its date, complete when it is
    first built (late readings arrive the next day), so no built date changes. -#}
{%- set window_start = incremental_window_start('baseline_date', extra_days=-1) %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

baseline_settings as (

    select
        cast(max(case when rule = 'abnormal_fluctuation' and parameter = 'baseline_days' then value end) as integer)
            as baseline_days
    from anomaly_thresholds

),

readings_in_window as (

    select
        readings.meter_id,
        readings.reading_date,
        readings.step_kw
    from readings
    {% if window_start %}
    cross join baseline_settings
    where readings.reading_date >= {{ window_start }} - baseline_settings.baseline_days
    {% endif %}

),

baseline_dates as (

    select distinct reading_date as baseline_date
    from readings
    {% if window_start %}
    where reading_date >= {{ window_start }}
    {% endif %}

),

window_steps as (

    select
        baseline_dates.baseline_date,
        readings.meter_id,
        readings.step_kw
    from baseline_dates
    cross join baseline_settings
    inner join readings_in_window as readings
        on readings.reading_date >= baseline_dates.baseline_date - baseline_settings.baseline_days
        and readings.reading_date < baseline_dates.baseline_date
    where readings.step_kw is not null

),

step_percentiles as (

    {{ percentile_by_group(
        'window_steps',
        ['baseline_date', 'meter_id'],
        'step_kw',
        seed_parameter('anomaly_thresholds', 'surge', 'step_percentile')
    ) }}

),

final as (

    select
        step_percentiles.meter_id,
        step_percentiles.baseline_date,
        step_percentiles.percentile_value as step_percentile_kw,
        step_percentiles.value_count as steps
    from step_percentiles

)

select * from final
