-- The baseline window of every meter's 15-minute slot, kept so that a day's run moves it along instead
-- of gathering it again: one row per meter and slot, with the local dates and loads of its readings
-- from baseline_days (seed anomaly_thresholds) before first_baseline_date to the day before
-- last_baseline_date, the baseline dates the latest run added. int_power_slot_baselines takes each of
-- those dates' window from these lists.
--
-- Cost (DESIGN section 7, a daily cost that does not grow with history): a run keeps the values still
-- inside the first new date's window and appends the readings of the days since the previous run (one
-- day a day), 1.38 M short lists at full scale, instead of regrouping baseline_days x meters x 96
-- readings (38.6 M), which spills under DuckDB's memory bound. The first build, and a run after a gap
-- or a backfill of several days, read every day they need.
-- Readings are read as int_power_readings_sequenced holds them when their day is first added: the days
-- before the previous run's last baseline date are not rebuilt by it (lookback 0) and late readings
-- arrive with the next day's batch, so a window equals one gathered afresh. After a full refresh of
-- int_power_readings_sequenced, or a larger baseline_days, rebuild this model and its dependants too:
-- dbt build --full-refresh --select int_power_slot_windows+ (the run says so when it has to).
-- depends_on: {{ ref('int_power_readings_sequenced') }}

{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'slot_of_day'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['meter_id', 'slot_of_day'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{%- set baseline_days = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'baseline_days', 28) | int %}
{%- set state_last = none %}
{%- set new_first, new_last = none, none %}
{%- if relations_built([ref('int_power_readings_sequenced')]) %}
    {%- if is_incremental() %}
        {%- set state = run_query("select max(last_baseline_date), max(baseline_days) from " ~ this).rows[0] %}
        {%- if state[0] is not none %}
            {%- set state_last = state[0] if state[0] is string else state[0].strftime('%Y-%m-%d') %}
            {%- if baseline_days > (state[1] | int) %}
                {{ exceptions.raise_compiler_error(
                    "int_power_slot_windows holds " ~ state[1] ~ " days of readings, and the seed anomaly_thresholds now asks for "
                    ~ baseline_days ~ " (abnormal_fluctuation.baseline_days): rebuild the windows and their dependants with "
                    ~ "dbt build --full-refresh --select int_power_slot_windows+"
                ) }}
            {%- endif %}
        {%- endif %}
    {%- endif %}
    {%- set dates_query %}
        select cast(min(reading_date) as varchar), cast(max(reading_date) as varchar)
        from {{ ref('int_power_readings_sequenced') }}
        {% if state_last %}where reading_date > cast('{{ state_last }}' as date){% endif %}
    {%- endset %}
    {%- set new_dates = run_query(dates_query).rows[0] %}
    {%- set new_first, new_last = new_dates[0], new_dates[1] %}
{%- endif %}

{#- No new baseline date (or dbt only parsing, or compiling before a build): no row, and the windows stay as they are. -#}
{%- if new_last is none %}

select
    cast(null as varchar) as meter_id,
    cast(null as integer) as slot_of_day,
    cast(null as date[]) as window_dates,
    cast(null as double precision[]) as window_loads,
    cast(null as date) as first_baseline_date,
    cast(null as date) as last_baseline_date,
    cast(null as integer) as baseline_days
where 1 = 0

{%- else %}

{%- set first_date = "cast('" ~ new_first[:10] ~ "' as date)" %}
{%- set last_date = "cast('" ~ new_last[:10] ~ "' as date)" %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}

),

-- the readings that enter the windows: the days since the previous run's last baseline date (its own
-- readings were after its window), up to the day before the last new date
readings_added as (

    select
        meter_id,
        slot_of_day,
        {{ value_list('reading_date') }} as window_dates,
        {{ value_list('load_kw') }} as window_loads
    from readings
    where load_kw is not null
        and reading_date < {{ last_date }}
        {% if state_last %}
        and reading_date >= cast('{{ state_last }}' as date)
        {% else %}
        and reading_date >= {{ first_date }} - {{ baseline_days }}
        {% endif %}
    group by meter_id, slot_of_day

),

{% if state_last %}
-- the values of the previous windows still inside the first new date's window
readings_kept as (

    select
        meter_id,
        slot_of_day,
        {{ values_dated_within('window_dates', 'window_dates', first_date ~ ' - ' ~ baseline_days, first_date ~ ' - 1') }}
            as window_dates,
        {{ values_dated_within('window_loads', 'window_dates', first_date ~ ' - ' ~ baseline_days, first_date ~ ' - 1') }}
            as window_loads
    from {{ this }}

),
{% endif %}

final as (

    select
        {% if state_last %}
        coalesce(readings_kept.meter_id, readings_added.meter_id) as meter_id,
        coalesce(readings_kept.slot_of_day, readings_added.slot_of_day) as slot_of_day,
        {{ concat_lists('readings_kept.window_dates', 'readings_added.window_dates') }} as window_dates,
        {{ concat_lists('readings_kept.window_loads', 'readings_added.window_loads') }} as window_loads,
        {% else %}
        readings_added.meter_id,
        readings_added.slot_of_day,
        readings_added.window_dates,
        readings_added.window_loads,
        {% endif %}
        {{ first_date }} as first_baseline_date,
        {{ last_date }} as last_baseline_date,
        {{ baseline_days }} as baseline_days
    {% if state_last %}
    from readings_kept
    full outer join readings_added
        on readings_kept.meter_id = readings_added.meter_id
        and readings_kept.slot_of_day = readings_added.slot_of_day
    {% else %}
    from readings_added
    {% endif %}

)

select * from final

{%- endif %}
