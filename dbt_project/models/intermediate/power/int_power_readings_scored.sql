-- Every power reading beside what is usual for it, and the scores of the relative rules
-- (abnormal_fluctuation, surge) for the window that starts at it. Seed anomaly_thresholds.
--
-- usual_load_kw: the slot's usual load over the day's similar days (int_power_usual_profiles) times the
-- day's factor, the median of load / usual over the day's material slots (a whole day 20 % busier or
-- quieter, a warm day or a slow restart, moves the usual with it; a 2-hour event does not move a median).
-- A day whose factor is outside [min_day_factor, max_day_factor] is unlike its similar days as a whole (a
-- plant mostly at rest, a meter reading a fraction of the load): the relative rules do not judge it.
--
-- A window is window_intervals (8: two hours) from this reading. Its mean load is compared three ways, in
-- natural logs of (mean + e) ratios, e = epsilon_share x the meter's level (so a night at 5 kW against 3 kW
-- is no event):
--   with the same intervals of the usual profile       (similar days: is this time of day like this?),
--   with the two hours before, less what the usual profile does between them,
--   with the two hours after, less the same,
-- the usual mean and the profile's change taken at their most favourable within +-tolerance_intervals
-- (a shift that starts or stops 30 minutes early explains its own step), over windows all judged. Two more
-- terms say the deviation came and went as a step (half-hour means, half hour against half hour): the
-- steepest step in from rise_edge_reach_intervals (drop_edge_reach_intervals for a drop) before the
-- window's start to its start, and the steepest step back from its end to the larger of the two after it.
-- A long drop is judged by a window in its middle (its own before and after windows take part of it), so
-- its step in may lie an hour before that window; a rise must start with its window: on real curves a step
-- an hour before a window is often a shift start followed by an ordinary busy spell. rise_score is the least of the five (all must agree that
-- the load went up), drop_score the same downwards: a step (a shift that starts or stops) differs from one
-- side only, a bump from both, and a busy afternoon that builds up and ebbs over hours has no edges (on
-- real curves such slow bumps are as large as a 1.7x event; the edges tell them apart). Each mean needs window_min_readings of its intervals with both a usable
-- reading and a usual load (a catch-up reading after a gap is not one); a window whose side was not read
-- (an outage, the start of the data) is not judged. int_power_anomaly_intervals compares the scores with
-- the day's thresholds.
--
-- A window is judged once its last "after" interval is read (up to 4 hours after it starts: the end of the
-- latest day waits for the next day's readings), for a meter with a level, min_similar_days similar days
-- and min_kind_days days of the day's kind,
-- and not for an enterprise under a production-suspension order or whose order ended within the lookback
-- (its history is not normal operation; suspension_violation watches it).
--
-- Surge at a reading: the load at least step_ratio x the reading before, and still so at the next reading;
-- the step larger than any the similar days made within +-tolerance_intervals of that time; both readings
-- high_margin above the highest reading of the lookback within high_hours of that hour of the day.
-- New peak: the 1-hour mean (peak_intervals, 3 of them read) above peak_ratio x the lookback's highest
-- 1-hour mean.
--
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- whose readings, usual profiles or context changed (power_model_dates), and that meter's rows of the days
-- either side whose windows read across midnight into them: the day before's last intervals, the day
-- after's first (scored_reach, scored_rebuilt_rows).

{%- set build_dates = power_model_dates() %}
{%- set windows = scored_windows() %}
{%- set window, tolerance, step_tolerance = windows.window, windows.tolerance, windows.step_tolerance %}
{%- set peak_intervals, min_readings = windows.peak_intervals, windows.min_readings %}
{%- set rise_reach, drop_reach = windows.rise_reach, windows.drop_reach %}
{%- set reach = [rise_reach, drop_reach] | max %}
{#- A reading's scores read the readings up to reach_before intervals before it and reach_after after it
    (scored_reach). A build writes the build dates' readings and those of the days around them whose scores
    read into a build date: the last reach_after of the day before, the first reach_before of the day after
    (scored_rebuilt_rows); its grid holds those and what their scores read, not whole days (a daily build's
    grid is 1.4 days, not 3). #}
{%- set reach_before, reach_after = scored_reach(windows) %}
{%- set written_before, written_after = reach_after, reach_before %}
{%- set grid_before, grid_after = reach_after + reach_before, reach_before + reach_after %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'scored_rebuilt_rows', 'build_dates_column': 'reading_date'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        pre_hook="{{ window_query_settings(hash_joins=true) }}",
        indexes=[
            {'columns': ['meter_id', 'reading_at'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{%- set context_dates = widen_rebuild(build_dates, before=1, after=1) %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}
    where {{ in_rebuild('reading_date', context_dates) }}

),

usual_profiles as {{ inlined() }} (

    select * from {{ ref('int_power_usual_profiles') }}
    where {{ in_rebuild('reading_date', context_dates) }}

),

day_context as {{ inlined() }} (

    select * from {{ ref('int_power_meter_day_context') }}
    where {{ in_rebuild('reading_date', context_dates) }}

),

suspension_orders as (

    select * from {{ ref('stg_yjj__production_suspension_orders') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        cast(max(case when rule = 'baseline' and parameter = 'lookback_days' then value end) as integer)
            as lookback_days,
        cast(max(case when rule = 'baseline' and parameter = 'min_similar_days' then value end) as integer)
            as min_similar_days,
        cast(max(case when rule = 'baseline' and parameter = 'min_kind_days' then value end) as integer)
            as min_kind_days,
        max(case when rule = 'baseline' and parameter = 'material_share' then value end) as material_share,
        cast(max(case when rule = 'baseline' and parameter = 'min_factor_slots' then value end) as integer)
            as min_factor_slots,
        max(case when rule = 'baseline' and parameter = 'min_day_factor' then value end) as min_day_factor,
        max(case when rule = 'baseline' and parameter = 'max_day_factor' then value end) as max_day_factor,
        max(case when rule = 'abnormal_fluctuation' and parameter = 'epsilon_share' then value end)
            as epsilon_share,
        cast(max(case when rule = 'surge' and parameter = 'high_hours' then value end) as integer) as high_hours,
        max(case when rule = 'surge' and parameter = 'step_ratio' then value end) as step_ratio,
        max(case when rule = 'surge' and parameter = 'high_margin' then value end) as high_margin
    from anomaly_thresholds

),

readings_located as {{ inlined() }} (

    select
        readings.*,
        cast(floor(readings.slot_of_day / 4) as integer) as hour_of_day,
        case
            when readings.reading_state = 'usable' and not readings.is_after_gap then readings.load_kw
        end as relative_load_kw
    from readings

),

-- each reading's load against its usual, as its own narrow rows: the median's sort then carries a number per
-- reading, not the day's lists (offset 0 keeps Postgres from folding it into the aggregate)
day_factor_ratios as (

    select
        readings_located.meter_id,
        readings_located.reading_date,
        readings_located.relative_load_kw / usual_profiles.usual_loads[readings_located.slot_of_day + 1] as load_ratio
    from readings_located
    cross join settings
    inner join usual_profiles
        on readings_located.meter_id = usual_profiles.meter_id
        and readings_located.reading_date = usual_profiles.reading_date
    inner join day_context
        on readings_located.meter_id = day_context.meter_id
        and readings_located.reading_date = day_context.reading_date
    where readings_located.relative_load_kw is not null
        and usual_profiles.usual_loads[readings_located.slot_of_day + 1] > 0
        and usual_profiles.usual_loads[readings_located.slot_of_day + 1] >= settings.material_share * day_context.level_kw
    -- noqa: disable=AM09
    offset 0

),

-- noqa: enable=AM09

day_factors as (

    select
        day_factor_ratios.meter_id,
        day_factor_ratios.reading_date,
        case
            when count(*) >= max(settings.min_factor_slots)
                then {{ continuous_percentile('day_factor_ratios.load_ratio', 0.5) }}
        end as day_factor
    from day_factor_ratios
    cross join settings
    group by day_factor_ratios.meter_id, day_factor_ratios.reading_date

),

suspension_context as (

    select
        readings_located.meter_id,
        readings_located.reading_at,
        max(
            case
                when suspension_orders.effective_to is null or readings_located.reading_at < suspension_orders.effective_to
                    then 1
                else 0
            end
        ) as is_in_force,
        max(
            case
                when suspension_orders.effective_to is null
                    or {{ local_date('suspension_orders.effective_to') }}
                    >= readings_located.reading_date - settings.lookback_days
                    then 1
                else 0
            end
        ) as is_within_lookback
    from readings_located
    cross join settings
    inner join suspension_orders
        on readings_located.enterprise_id = suspension_orders.enterprise_id
        and suspension_orders.effective_from <= readings_located.reading_at
    group by readings_located.meter_id, readings_located.reading_at

),

readings_with_usual as (

    select
        readings_located.meter_id,
        readings_located.enterprise_id,
        readings_located.reading_at,
        readings_located.reading_date,
        readings_located.slot_of_day,
        readings_located.hour_of_day,
        readings_located.load_kw,
        readings_located.reading_state,
        readings_located.is_after_gap,
        readings_located.previous_load_kw,
        readings_located.previous_read_at,
        readings_located.contracted_capacity_kw,
        readings_located.relative_load_kw,
        day_context.level_kw,
        day_context.similar_days,
        coalesce(day_factors.day_factor, 1) as day_factor,
        coalesce(day_factors.day_factor, 1) * usual_profiles.usual_loads[readings_located.slot_of_day + 1] as usual_load_kw,
        usual_profiles.usual_steps[readings_located.slot_of_day + 1] as usual_step_kw,
        greatest(
            case when readings_located.hour_of_day >= 1 then day_context.lookback_hourly_highs[readings_located.hour_of_day] end,
            day_context.lookback_hourly_highs[readings_located.hour_of_day + 1],
            case when readings_located.hour_of_day <= 22 then day_context.lookback_hourly_highs[readings_located.hour_of_day + 2] end
        ) as lookback_high_kw,
        day_context.lookback_max_hour_mean_kw,
        coalesce(suspension_context.is_in_force, 0) = 1 as is_under_suspension,
        coalesce(suspension_context.is_within_lookback, 0) = 1 as has_recent_suspension,
        settings.epsilon_share * day_context.level_kw as epsilon_kw,
        (
            day_context.level_kw > 0
            and day_context.similar_days >= settings.min_similar_days
            and day_context.kind_history_days >= settings.min_kind_days
            and coalesce(day_factors.day_factor, 1) between settings.min_day_factor and settings.max_day_factor
            and coalesce(suspension_context.is_within_lookback, 0) = 0
        ) as is_judged_day
    from readings_located
    cross join settings
    left join usual_profiles
        on readings_located.meter_id = usual_profiles.meter_id
        and readings_located.reading_date = usual_profiles.reading_date
    left join day_context
        on readings_located.meter_id = day_context.meter_id
        and readings_located.reading_date = day_context.reading_date
    left join day_factors
        on readings_located.meter_id = day_factors.meter_id
        and readings_located.reading_date = day_factors.reading_date
    left join suspension_context
        on readings_located.meter_id = suspension_context.meter_id
        and readings_located.reading_at = suspension_context.reading_at
    where {{ in_rebuild_with_margins(
        'readings_located.reading_date', 'readings_located.slot_of_day', build_dates, grid_before, grid_after,
        'readings_located.meter_id') }}

),

-- a dense grid of the context's 15-minute intervals per meter (a missing reading is a row without one), so
-- that a window is a fixed number of rows: its sums are differences of running sums, and its neighbours
-- lags and leads (cheap), instead of time-range frames; last_reading_at bounds the windows judged
meters as (

    select
        meter_id,
        max(reading_at) as last_reading_at
    from readings_with_usual
    group by meter_id

),

grid_dates as (

    {{ date_range_rows('readings_with_usual', 'reading_date') }}

),

slots as (

    select slot_of_day from generate_series(0, 95) as slot_numbers (slot_of_day)

),

grid as (

    select
        meters.meter_id,
        meters.last_reading_at,
        grid_dates.reading_date,
        slots.slot_of_day,
        {{ local_slot_start('grid_dates.reading_date', 'slots.slot_of_day') }} as interval_at
    from meters
    cross join grid_dates
    cross join slots
    where {{ in_rebuild_with_margins(
        'grid_dates.reading_date', 'slots.slot_of_day', build_dates, grid_before, grid_after, 'meters.meter_id') }}

),

grid_values as (

    select
        grid.meter_id,
        grid.interval_at,
        grid.last_reading_at,
        readings_with_usual.enterprise_id,
        readings_with_usual.reading_at,
        readings_with_usual.reading_date,
        readings_with_usual.slot_of_day,
        readings_with_usual.hour_of_day,
        readings_with_usual.load_kw,
        readings_with_usual.reading_state,
        readings_with_usual.is_after_gap,
        readings_with_usual.previous_load_kw,
        readings_with_usual.previous_read_at,
        readings_with_usual.contracted_capacity_kw,
        readings_with_usual.relative_load_kw,
        readings_with_usual.level_kw,
        readings_with_usual.similar_days,
        readings_with_usual.day_factor,
        readings_with_usual.usual_load_kw,
        readings_with_usual.usual_step_kw,
        readings_with_usual.lookback_high_kw,
        readings_with_usual.lookback_max_hour_mean_kw,
        readings_with_usual.is_under_suspension,
        readings_with_usual.has_recent_suspension,
        readings_with_usual.epsilon_kw,
        readings_with_usual.is_judged_day,

        case
            when readings_with_usual.relative_load_kw is not null and readings_with_usual.usual_load_kw is not null
                then readings_with_usual.relative_load_kw
        end as paired_load_kw,
        case
            when readings_with_usual.relative_load_kw is not null and readings_with_usual.usual_load_kw is not null
                then readings_with_usual.usual_load_kw
        end as paired_usual_kw
    from grid
    left join readings_with_usual
        on grid.meter_id = readings_with_usual.meter_id
        and grid.interval_at = readings_with_usual.reading_at

),

-- Every window value below is read from the running sums by lags and leads of one window (by_meter), and
-- every frame of neighbours by lags and leads of a second: on Postgres each distinct window is a pass over
-- the whole grid (2.8 M rows a city-day at full scale), so the chain is three passes, not nine.
-- Each select below lists the values it computes before the columns it passes on (`x.*`): Postgres reads a
-- lead or lag's argument from the stored row by walking the row's columns up to it, so what the next window
-- reads comes first (at full scale the select took 36 s with the passed-on columns first, 32 s so).
running_sums as (

    select
        sum(paired_load_kw) over running as load_sum,
        sum(paired_usual_kw) over running as usual_sum,
        count(paired_load_kw) over running as paired_count,
        sum(relative_load_kw) over running as relative_sum,
        count(relative_load_kw) over running as relative_count,
        grid_values.*
    from grid_values
    window running as (
        partition by grid_values.meter_id order by interval_at rows between unbounded preceding and current row
    )

),

windows as (

    select
        -- a window's sum: the running sum at its last interval less the one before its first (0 before the grid)
        lead(load_sum, {{ window - 1 }}) over by_meter - coalesce(lag(load_sum, 1) over by_meter, 0) as window_load_sum,
        lead(usual_sum, {{ window - 1 }}) over by_meter - coalesce(lag(usual_sum, 1) over by_meter, 0) as window_usual_sum,
        lead(paired_count, {{ window - 1 }}) over by_meter - coalesce(lag(paired_count, 1) over by_meter, 0) as window_readings,
        coalesce(lag(load_sum, 1) over by_meter, 0) - coalesce(lag(load_sum, {{ window + 1 }}) over by_meter, 0) as before_load_sum,
        coalesce(lag(usual_sum, 1) over by_meter, 0) - coalesce(lag(usual_sum, {{ window + 1 }}) over by_meter, 0) as before_usual_sum,
        coalesce(lag(paired_count, 1) over by_meter, 0) - coalesce(lag(paired_count, {{ window + 1 }}) over by_meter, 0) as before_readings,
        lead(load_sum, {{ 2 * window - 1 }}) over by_meter - lead(load_sum, {{ window - 1 }}) over by_meter as after_load_sum,
        lead(usual_sum, {{ 2 * window - 1 }}) over by_meter - lead(usual_sum, {{ window - 1 }}) over by_meter as after_usual_sum,
        lead(paired_count, {{ 2 * window - 1 }}) over by_meter - lead(paired_count, {{ window - 1 }}) over by_meter as after_readings,
        relative_sum - coalesce(lag(relative_sum, {{ peak_intervals }}) over by_meter, 0) as hour_load_sum,
        relative_count - coalesce(lag(relative_count, {{ peak_intervals }}) over by_meter, 0) as hour_readings,
        -- the steps at a window's edges, between half-hour means (the usable readings of two intervals; one
        -- missing reading is no gap): into the window at its start (the half hour from it against the half
        -- hour before it), and out of a window ending at an interval (that half hour against the next one)
        ln(
            (
                (lead(relative_sum, 1) over by_meter - coalesce(lag(relative_sum, 1) over by_meter, 0))
                / nullif(lead(relative_count, 1) over by_meter - coalesce(lag(relative_count, 1) over by_meter, 0), 0)
                + epsilon_kw
            ) / (
                (lag(relative_sum, 1) over by_meter - coalesce(lag(relative_sum, 3) over by_meter, 0))
                / nullif(lag(relative_count, 1) over by_meter - coalesce(lag(relative_count, 3) over by_meter, 0), 0)
                + epsilon_kw
            )
        ) as step_in_log,
        ln(
            (
                (relative_sum - coalesce(lag(relative_sum, 2) over by_meter, 0))
                / nullif(relative_count - coalesce(lag(relative_count, 2) over by_meter, 0), 0)
                + epsilon_kw
            ) / (
                (lead(relative_sum, 2) over by_meter - coalesce(relative_sum, 0))
                / nullif(lead(relative_count, 2) over by_meter - relative_count, 0)
                + epsilon_kw
            )
        ) as step_out_log,
        {{ over_neighbours('greatest', 'usual_step_kw', step_tolerance) }} as usual_step_near_kw,
        lead(relative_load_kw) over by_meter as next_relative_load_kw,
        running_sums.*
    from running_sums
    window by_meter as (partition by running_sums.meter_id order by interval_at)

),

window_means as (

    select
        case when window_readings >= {{ min_readings }} then window_load_sum / window_readings end as judged_window_kw,
        case when window_readings >= {{ min_readings }} then window_usual_sum / window_readings end as window_usual_kw,
        case when before_readings >= {{ min_readings }} then before_load_sum / before_readings end as judged_before_kw,
        case when before_readings >= {{ min_readings }} then before_usual_sum / before_readings end as before_usual_kw,
        case when after_readings >= {{ min_readings }} then after_load_sum / after_readings end as judged_after_kw,
        case when after_readings >= {{ min_readings }} then after_usual_sum / after_readings end as after_usual_kw,
        case when hour_readings > 0 then hour_load_sum / hour_readings end as hour_mean_kw,
        windows.*
    from windows

),

window_logs as (

    select
        -- the usual mean of the window, where one was read (the tolerance takes it at nearby starts too)
        case when reading_at is not null and judged_window_kw is not null then window_usual_kw end
            as judged_usual_kw,
        ln((judged_window_kw + epsilon_kw) / (judged_before_kw + epsilon_kw)) as versus_before,
        ln((judged_window_kw + epsilon_kw) / (judged_after_kw + epsilon_kw)) as versus_after,
        -- what the usual profile does between the windows, at the intervals that were read
        case
            when reading_at is not null and judged_window_kw is not null and judged_before_kw is not null
                then ln((window_usual_kw + epsilon_kw) / (before_usual_kw + epsilon_kw))
        end as usual_versus_before,
        case
            when reading_at is not null and judged_window_kw is not null and judged_after_kw is not null
                then ln((window_usual_kw + epsilon_kw) / (after_usual_kw + epsilon_kw))
        end as usual_versus_after,
        window_means.*
    from window_means

),

window_tolerances as (

    select
        -- the way in: the steepest step in from edge_reach_intervals before the window's start to its start;
        -- the way back: the steepest step out from the window's end to edge_reach_intervals after it
        {{ over_offsets('greatest', 'step_in_log', -rise_reach, 0) }} as step_in_up_log,
        {{ over_offsets('least', 'step_in_log', -drop_reach, 0) }} as step_in_down_log,
        {{ over_offsets('greatest', 'step_out_log', window - 1, window - 1 + reach) }} as step_back_down_log,
        {{ over_offsets('least', 'step_out_log', window - 1, window - 1 + reach) }} as step_back_up_log,
        {{ over_neighbours('greatest', 'judged_usual_kw', tolerance) }} as usual_window_high_kw,
        {{ over_neighbours('least', 'judged_usual_kw', tolerance) }} as usual_window_low_kw,
        {{ over_neighbours('greatest', 'usual_versus_before', tolerance) }} as usual_rise_before,
        {{ over_neighbours('least', 'usual_versus_before', tolerance) }} as usual_drop_before,
        {{ over_neighbours('greatest', 'usual_versus_after', tolerance) }} as usual_rise_after,
        {{ over_neighbours('least', 'usual_versus_after', tolerance) }} as usual_drop_after,
        -- the tolerance needs every start within it judged (a gap near a shift start hides the usual step)
        {{ neighbours_all_present(['judged_usual_kw', 'usual_versus_before', 'usual_versus_after'], tolerance) }}
            as has_full_tolerance,
        window_logs.*
    from window_logs
    window by_meter as (partition by window_logs.meter_id order by interval_at)

),

final as (

    select
        meter_id,
        enterprise_id,
        reading_at,
        reading_date,
        slot_of_day,
        load_kw,
        reading_state,
        is_after_gap,
        previous_load_kw,
        previous_read_at,
        contracted_capacity_kw,
        level_kw,
        day_factor,
        usual_load_kw,
        is_under_suspension,
        has_recent_suspension,
        is_judged_day,
        judged_window_kw as window_mean_kw,
        window_usual_kw,
        judged_before_kw as before_mean_kw,
        judged_after_kw as after_mean_kw,
        case
            when is_judged_day
                and has_full_tolerance
                and versus_before is not null
                and versus_after is not null
                and reading_at + interval '{{ (2 * window - 1) * 15 }} minutes' <= last_reading_at
                and step_in_up_log is not null
                and step_back_down_log is not null
                then least(
                    ln((judged_window_kw + epsilon_kw) / (usual_window_high_kw + epsilon_kw)),
                    versus_before - usual_rise_before,
                    versus_after - usual_rise_after,
                    step_in_up_log,
                    step_back_down_log
                )
        end as rise_score,
        case
            when is_judged_day
                and has_full_tolerance
                and versus_before is not null
                and versus_after is not null
                and reading_at + interval '{{ (2 * window - 1) * 15 }} minutes' <= last_reading_at
                and step_in_down_log is not null
                and step_back_up_log is not null
                then -greatest(
                    ln((judged_window_kw + epsilon_kw) / (usual_window_low_kw + epsilon_kw)),
                    versus_before - usual_drop_before,
                    versus_after - usual_drop_after,
                    step_in_down_log,
                    step_back_up_log
                )
        end as drop_score,
        case when hour_readings >= {{ peak_intervals - 1 }} then hour_mean_kw end as hour_mean_kw,
        lookback_max_hour_mean_kw,
        coalesce(
            is_judged_day
            and relative_load_kw >= settings.step_ratio * previous_load_kw
            and previous_load_kw > 0
            and next_relative_load_kw >= settings.step_ratio * previous_load_kw
            and relative_load_kw - previous_load_kw > usual_step_near_kw
            and relative_load_kw > settings.high_margin * lookback_high_kw
            and next_relative_load_kw > settings.high_margin * lookback_high_kw,
            false
        ) as is_surge_step,
        usual_step_near_kw,
        lookback_high_kw,
        {{ built_at() }} as _built_at
    from window_tolerances
    cross join settings
    where reading_at is not null
        and {{ in_rebuild_with_margins('reading_date', 'slot_of_day', build_dates, written_before, written_after) }}

)

select * from final
