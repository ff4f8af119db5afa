-- The largest usual step of every meter: the step_percentile (seed anomaly_thresholds, surge) of the
-- meter's 15-minute load steps, load(t) - load(t-1), over the baseline_days local days before
-- baseline_date. A surge's step must exceed it.
-- The percentile is interpolated like quantile_cont / percentile_cont (macro percentile_of_largest),
-- from the largest steps of each day of the window (int_power_daily_largest_steps), merged; its
-- fraction is read from the seed when the model runs.
-- Cost: incremental like int_power_slot_baselines, baseline_days x meters short lists per new date
-- (0.4 M at full scale), whatever the history.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['baseline_date', 'meter_id'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{#- Only dates after the latest built (appended: no built date changes). -#}
{%- set window_start = incremental_window_start('baseline_date', extra_days=-1) %}
{%- set baseline_days = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'baseline_days', 28) %}
{%- set fraction = seed_parameter('anomaly_thresholds', 'surge', 'step_percentile', 0.99) %}
{%- set needed_steps = (baseline_days * 96 * (1 - fraction)) | round(0, 'ceil') | int + 2 %}
{%- if relations_built([ref('int_power_daily_largest_steps')]) %}
    {%- set kept_query %}
        select min(kept_steps) from {{ ref('int_power_daily_largest_steps') }}
        {% if window_start %}where reading_date >= {{ window_start }} - {{ baseline_days | int }}{% endif %}
    {%- endset %}
    {%- set kept = run_query(kept_query).rows[0][0] %}
    {%- if kept is not none and (kept | int) < ([96, needed_steps] | min) %}
        {{ exceptions.raise_compiler_error(
            "int_power_daily_largest_steps keeps " ~ kept ~ " steps a day, and the seed anomaly_thresholds now needs "
            ~ needed_steps ~ " (surge.step_percentile, abnormal_fluctuation.baseline_days): rebuild it and its dependants with "
            ~ "dbt build --full-refresh --select int_power_daily_largest_steps+"
        ) }}
    {%- endif %}
{%- endif %}

with daily_steps as (

    select * from {{ ref('int_power_daily_largest_steps') }}

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

window_days as (

    select
        baseline_dates.baseline_date,
        daily_steps.meter_id,
        daily_steps.largest_steps_kw,
        daily_steps.steps
    from baseline_dates
    inner join daily_steps
        on daily_steps.reading_date >= baseline_dates.baseline_date - {{ baseline_days | int }}
        and daily_steps.reading_date < baseline_dates.baseline_date
        {% if window_start %}
        and daily_steps.reading_date >= {{ window_start }} - {{ baseline_days | int }}
        {% endif %}

),

merged as (

    {{ merge_largest_by_group('window_days', ['baseline_date', 'meter_id'], 'largest_steps_kw', 'steps', [96, needed_steps] | min) }}

),

final as (

    select
        meter_id,
        baseline_date,
        {{ percentile_of_largest('merged_values', 'value_count', fraction) }} as step_percentile_kw,
        value_count as steps
    from merged

)

select * from final
