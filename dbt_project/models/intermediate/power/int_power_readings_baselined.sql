-- Each power reading beside what is usual for it: the slot's median and MAD over the previous
-- baseline_days (robust z-score), the meter's usual largest step, the contracted capacity, and
-- whether a production-suspension order is in force (or was within the baseline window, when the
-- baseline does not describe normal operation). The anomaly rules of fct_power_anomalies read this.
-- Incremental by local day like int_power_readings_sequenced.
--
-- The previous interval (15 minutes before) is read from int_power_readings_sequenced's
-- previous_load_kw (set when the meter was read then) and scored against its own slot's baseline (the
-- slot before, or the last slot of the day before), instead of a window over the meter's readings:
-- sorting a day and a half of readings by meter cost more than the whole rest of the model.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook=["{{ window_query_settings() }}", "{{ delete_incremental_window('reading_date') }}"],
        indexes=[{'columns': ['meter_id', 'reading_at'], 'unique': True}, {'columns': ['reading_date']}] if target.type == 'postgres' else [],
    )
}}

{%- set window_start = incremental_window_start('reading_date') %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}
    {% if window_start %}
    where reading_date >= {{ window_start }}
    {% endif %}

),

slot_baselines as (

    select * from {{ ref('int_power_slot_baselines') }}
    {% if window_start %}
    where baseline_date >= {{ window_start }}
    {% endif %}

),

-- the baselines of the previous intervals: the same dates, and the last slot of the day before the
-- first (a daily run's two joins each hold the days it rebuilds, not a third day more)
previous_slot_baselines as (

    select * from {{ ref('int_power_slot_baselines') }}
    {% if window_start %}
    where baseline_date >= {{ window_start }}
        or (baseline_date = {{ window_start }} - 1 and slot_of_day = 95)
    {% endif %}

),

step_baselines as (

    select * from {{ ref('int_power_step_baselines') }}
    {% if window_start %}
    where baseline_date >= {{ window_start }}
    {% endif %}

),

safety_profiles as (

    select * from {{ ref('stg_yjj__enterprise_safety_profiles') }}

),

suspension_orders as (

    select * from {{ ref('stg_yjj__production_suspension_orders') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

baseline_settings as (

    select
        cast(max(case when parameter = 'baseline_days' then value end) as integer) as baseline_days,
        cast(max(case when parameter = 'min_baseline_days' then value end) as integer) as min_baseline_days,
        max(case when parameter = 'min_mad_ratio' then value end) as min_mad_ratio
    from anomaly_thresholds
    where rule = 'abnormal_fluctuation'

),

readings_located as (

    select
        readings.*,
        -- the previous interval's local date and slot
        case when readings.slot_of_day = 0 then readings.reading_date - 1 else readings.reading_date end
            as previous_reading_date,
        case when readings.slot_of_day = 0 then 95 else readings.slot_of_day - 1 end as previous_slot_of_day
    from readings

),

suspension_context as (

    select
        readings.meter_id,
        readings.reading_at,
        max(
            case
                when suspension_orders.effective_to is null
                    or readings.reading_at < suspension_orders.effective_to
                    then 1
                else 0
            end
        ) as is_in_force,
        max(
            case
                when suspension_orders.effective_from <= readings.reading_at - interval '15 minutes'
                    and (
                        suspension_orders.effective_to is null
                        or readings.reading_at - interval '15 minutes' < suspension_orders.effective_to
                    )
                    then 1
                else 0
            end
        ) as was_in_force,
        max(
            case
                when suspension_orders.effective_to is null
                    or {{ local_date('suspension_orders.effective_to') }}
                    >= readings.reading_date - baseline_settings.baseline_days
                    then 1
                else 0
            end
        ) as is_within_baseline_window
    from readings
    cross join baseline_settings
    inner join suspension_orders
        on readings.enterprise_id = suspension_orders.enterprise_id
        and suspension_orders.effective_from <= readings.reading_at
    group by readings.meter_id, readings.reading_at

),

readings_scored as (

    select
        readings_located.meter_id,
        readings_located.enterprise_id,
        readings_located.reading_at,
        readings_located.reading_date,
        readings_located.slot_of_day,
        readings_located.load_kw,
        readings_located.previous_load_kw,
        readings_located.step_kw,
        safety_profiles.contracted_capacity_kw,
        slot_baselines.median_load_kw,
        slot_baselines.mad_load_kw,
        greatest(slot_baselines.mad_load_kw, baseline_settings.min_mad_ratio * slot_baselines.median_load_kw)
            as effective_mad_kw,
        coalesce(slot_baselines.baseline_days, 0) as baseline_days,
        previous_baselines.median_load_kw as previous_median_load_kw,
        greatest(
            previous_baselines.mad_load_kw, baseline_settings.min_mad_ratio * previous_baselines.median_load_kw
        ) as previous_effective_mad_kw,
        coalesce(previous_baselines.baseline_days, 0) as previous_baseline_days,
        step_baselines.step_percentile_kw,
        coalesce(suspension_context.is_in_force, 0) = 1 as is_under_suspension,
        coalesce(suspension_context.was_in_force, 0) = 1 as was_in_force,
        coalesce(suspension_context.is_within_baseline_window, 0) = 1 as has_recent_suspension,
        baseline_settings.min_baseline_days
    from readings_located
    cross join baseline_settings
    left join safety_profiles
        on readings_located.enterprise_id = safety_profiles.enterprise_id
    left join slot_baselines
        on readings_located.meter_id = slot_baselines.meter_id
        and readings_located.reading_date = slot_baselines.baseline_date
        and readings_located.slot_of_day = slot_baselines.slot_of_day
    left join previous_slot_baselines as previous_baselines
        on readings_located.meter_id = previous_baselines.meter_id
        and readings_located.previous_reading_date = previous_baselines.baseline_date
        and readings_located.previous_slot_of_day = previous_baselines.slot_of_day
    left join step_baselines
        on readings_located.meter_id = step_baselines.meter_id
        and readings_located.reading_date = step_baselines.baseline_date
    left join suspension_context
        on readings_located.meter_id = suspension_context.meter_id
        and readings_located.reading_at = suspension_context.reading_at

),

final as (

    select
        meter_id,
        enterprise_id,
        reading_at,
        reading_date,
        slot_of_day,
        load_kw,
        previous_load_kw,
        step_kw,
        contracted_capacity_kw,
        median_load_kw,
        mad_load_kw,
        effective_mad_kw,
        baseline_days,
        case
            when baseline_days >= min_baseline_days and effective_mad_kw > 0
                then 0.6745 * (load_kw - median_load_kw) / effective_mad_kw
        end as robust_z,
        -- previous_load_kw is set when the meter was read 15 minutes before
        case
            when previous_load_kw is not null
                and previous_baseline_days >= min_baseline_days
                and previous_effective_mad_kw > 0
                then 0.6745 * (previous_load_kw - previous_median_load_kw) / previous_effective_mad_kw
        end as previous_robust_z,
        step_percentile_kw,
        is_under_suspension,
        previous_load_kw is not null and was_in_force as was_under_suspension,
        has_recent_suspension
    from readings_scored

)

select * from final
