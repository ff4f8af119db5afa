-- The usual load of every meter in every 15-minute slot of the local day: the median and the median
-- absolute deviation (MAD) of the slot's readings over the baseline_days (seed anomaly_thresholds)
-- local days before baseline_date.
--
-- Cost: the baseline is maintained incrementally, one baseline_date at a time: a run computes only the
-- dates after the latest built, from the per-day, per-meter, per-slot readings of
-- int_power_readings_sequenced, so a day's cost does not grow with history: it reads baseline_days x
-- meters x 96 readings (38.6 M at full scale) once. The median and MAD are computed per warehouse
-- (macro median_and_mad): DuckDB's median and mad aggregates in one pass; on Postgres the slot's 28
-- values are gathered into an array by a hash aggregate and sorted there, 3.5x faster than two
-- percentile_cont passes (measured at scale 0.02: 0.48 s against 1.66 s a day).

{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'baseline_date', 'slot_of_day'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['baseline_date', 'meter_id', 'slot_of_day'], 'unique': True}] if target.type == 'postgres' else [],
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
        cast(max(case when parameter = 'baseline_days' then value end) as integer) as baseline_days
    from anomaly_thresholds
    where rule = 'abnormal_fluctuation'

),

readings_in_window as (

    select
        readings.meter_id,
        readings.reading_date,
        readings.slot_of_day,
        readings.load_kw
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

window_readings as (

    select
        baseline_dates.baseline_date,
        readings.meter_id,
        readings.slot_of_day,
        readings.load_kw
    from baseline_dates
    cross join baseline_settings
    inner join readings_in_window as readings
        on readings.reading_date >= baseline_dates.baseline_date - baseline_settings.baseline_days
        and readings.reading_date < baseline_dates.baseline_date

),

slot_statistics as (

    {{ median_and_mad('window_readings', ['baseline_date', 'meter_id', 'slot_of_day'], 'load_kw') }}

),

final as (

    select
        meter_id,
        baseline_date,
        slot_of_day,
        median_value as median_load_kw,
        mad_value as mad_load_kw,
        value_count as baseline_days
    from slot_statistics

)

select * from final
