-- The largest 15-minute load steps, load(t) - load(t-1), of every meter on every local day, largest
-- first, with the day's number of steps: what int_power_step_baselines needs of a day for the
-- step_percentile (seed anomaly_thresholds, surge) of a meter's steps over baseline_days.
--
-- A continuous percentile p of n values interpolates between the values of ranks floor((n-1)p) and
-- ceil((n-1)p), so it needs only the n - floor((n-1)p) largest; with n at most baseline_days x 96
-- steps, each day keeps kept_steps = ceil(baseline_days x 96 x (1 - p)) + 2 of them (29 for p = 0.99
-- and 28 days; all of a day's 96 when p is low). The largest values of a window are among its days'
-- largest, so a baseline date reads baseline_days x meters short lists (0.4 M at full scale) instead of
-- 38.2 M steps. Incremental by local day like int_power_readings_sequenced.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_incremental_window('reading_date') }}",
        indexes=[{'columns': ['reading_date', 'meter_id'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{%- set window_start = incremental_window_start('reading_date') %}
{%- set baseline_days = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'baseline_days', 28) %}
{%- set fraction = seed_parameter('anomaly_thresholds', 'surge', 'step_percentile', 0.99) %}
{%- set kept_steps = [96, (baseline_days * 96 * (1 - fraction)) | round(0, 'ceil') | int + 2] | min %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}
    where step_kw is not null
    {% if window_start %}
        and reading_date >= {{ window_start }}
    {% endif %}

),

final as (

    select
        meter_id,
        reading_date,
        {{ largest_values('step_kw', kept_steps) }} as largest_steps_kw,
        count(*) as steps,
        {{ kept_steps }} as kept_steps
    from readings
    group by meter_id, reading_date

)

select * from final
