-- The usual load of every meter in every 15-minute slot of the local day: the median and the median
-- absolute deviation (MAD) of the slot's readings over the baseline_days (seed anomaly_thresholds)
-- local days before baseline_date.
--
-- Maintained incrementally, one baseline_date at a time: a run computes only the dates after the latest
-- built (a date's window is complete when it is first built: late readings arrive the next day), each
-- from the rolling windows of int_power_slot_windows (the slot's readings as lists), so a day's cost
-- does not grow with history nor gathers baseline_days x meters x 96 readings (38.6 M at full scale)
-- again. Median and MAD per warehouse (macro median_and_mad_of_lists): DuckDB's list_median of each
-- list; Postgres' percentile_cont over each array.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['baseline_date', 'meter_id', 'slot_of_day'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{#- Only dates after the latest built (appended: no built date changes). -#}
{%- set window_start = incremental_window_start('baseline_date', extra_days=-1) %}
{%- set baseline_days = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'baseline_days', 28) | int %}
{{ check_windows_cover(ref('int_power_slot_windows'), ref('int_power_readings_sequenced'), window_start) }}

with windows as (

    select * from {{ ref('int_power_slot_windows') }}

),

readings as (

    select * from {{ ref('int_power_readings_sequenced') }}

),

baseline_dates as (

    select distinct reading_date as baseline_date
    from readings
    {% if window_start %}
    where reading_date >= {{ window_start }}
    {% endif %}

),

window_loads as (

    select
        baseline_dates.baseline_date,
        windows.meter_id,
        windows.slot_of_day,
        case
            -- a run that added one date (the daily case) holds exactly that date's window
            when windows.first_baseline_date = windows.last_baseline_date then windows.window_loads
            else {{ values_dated_within(
                'windows.window_loads',
                'windows.window_dates',
                'baseline_dates.baseline_date - ' ~ baseline_days,
                'baseline_dates.baseline_date - 1'
            ) }}
        end as window_loads
    from baseline_dates
    inner join windows
        on baseline_dates.baseline_date between windows.first_baseline_date and windows.last_baseline_date

),

slot_statistics as (

    {{ median_and_mad_of_lists('window_loads', ['baseline_date', 'meter_id', 'slot_of_day'], 'window_loads') }}

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
    where value_count > 0

)

select * from final
