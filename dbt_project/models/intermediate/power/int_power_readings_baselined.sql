-- Each power reading beside what is usual for it: the slot's median and MAD over the previous
-- baseline_days (robust z-score), the meter's usual largest step, the contracted capacity, and
-- whether a production-suspension order is in force (or was within the baseline window, when the
-- baseline does not describe normal operation). The anomaly rules of fct_power_anomalies read this.
-- Incremental by local day like int_power_readings_sequenced (one day more is read for the previous
-- interval's z-score).

{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'reading_at'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ window_query_settings() }}",
        indexes=[{'columns': ['meter_id', 'reading_at'], 'unique': True}, {'columns': ['reading_date']}] if target.type == 'postgres' else [],
    )
}}

{%- set window_start = incremental_window_start('reading_date') %}

with readings as (

    select * from {{ ref('int_power_readings_sequenced') }}

),

slot_baselines as (

    select * from {{ ref('int_power_slot_baselines') }}
    {% if window_start %}
    where baseline_date >= {{ window_start }} - 1
    {% endif %}

),

step_baselines as (

    select * from {{ ref('int_power_step_baselines') }}
    {% if window_start %}
    where baseline_date >= {{ window_start }} - 1
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

readings_in_window as (

    select * from readings
    {% if window_start %}
    where reading_date >= {{ window_start }} - 1
    {% endif %}

),

suspension_context as (

    select
        readings_in_window.meter_id,
        readings_in_window.reading_at,
        max(
            case
                when suspension_orders.effective_to is null
                    or readings_in_window.reading_at < suspension_orders.effective_to
                    then 1
                else 0
            end
        ) as is_in_force,
        max(
            case
                when suspension_orders.effective_to is null
                    or {{ local_date('suspension_orders.effective_to') }}
                    >= readings_in_window.reading_date - baseline_settings.baseline_days
                    then 1
                else 0
            end
        ) as is_within_baseline_window
    from readings_in_window
    cross join baseline_settings
    inner join suspension_orders
        on readings_in_window.enterprise_id = suspension_orders.enterprise_id
        and suspension_orders.effective_from <= readings_in_window.reading_at
    group by readings_in_window.meter_id, readings_in_window.reading_at

),

readings_scored as (

    select
        readings_in_window.meter_id,
        readings_in_window.enterprise_id,
        readings_in_window.reading_at,
        readings_in_window.reading_date,
        readings_in_window.slot_of_day,
        readings_in_window.load_kw,
        readings_in_window.previous_load_kw,
        readings_in_window.step_kw,
        safety_profiles.contracted_capacity_kw,
        slot_baselines.median_load_kw,
        slot_baselines.mad_load_kw,
        greatest(slot_baselines.mad_load_kw, baseline_settings.min_mad_ratio * slot_baselines.median_load_kw)
            as effective_mad_kw,
        coalesce(slot_baselines.baseline_days, 0) as baseline_days,
        step_baselines.step_percentile_kw,
        coalesce(suspension_context.is_in_force, 0) = 1 as is_under_suspension,
        coalesce(suspension_context.is_within_baseline_window, 0) = 1 as has_recent_suspension,
        baseline_settings.min_baseline_days
    from readings_in_window
    cross join baseline_settings
    left join safety_profiles
        on readings_in_window.enterprise_id = safety_profiles.enterprise_id
    left join slot_baselines
        on readings_in_window.meter_id = slot_baselines.meter_id
        and readings_in_window.reading_date = slot_baselines.baseline_date
        and readings_in_window.slot_of_day = slot_baselines.slot_of_day
    left join step_baselines
        on readings_in_window.meter_id = step_baselines.meter_id
        and readings_in_window.reading_date = step_baselines.baseline_date
    left join suspension_context
        on readings_in_window.meter_id = suspension_context.meter_id
        and readings_in_window.reading_at = suspension_context.reading_at

),

readings_with_z as (

    select
        readings_scored.*,
        case
            when baseline_days >= min_baseline_days and effective_mad_kw > 0
                then 0.6745 * (load_kw - median_load_kw) / effective_mad_kw
        end as robust_z
    from readings_scored

),

readings_with_previous as (

    select
        readings_with_z.*,
        lag(reading_at) over by_meter as previous_reading_at,
        lag(robust_z) over by_meter as previous_reading_robust_z,
        lag(is_under_suspension) over by_meter as previous_reading_under_suspension
    from readings_with_z
    window by_meter as (partition by meter_id order by reading_at)

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
        robust_z,
        case
            when previous_reading_at = reading_at - interval '15 minutes' then previous_reading_robust_z
        end as previous_robust_z,
        step_percentile_kw,
        is_under_suspension,
        coalesce(
            previous_reading_at = reading_at - interval '15 minutes' and previous_reading_under_suspension,
            false
        ) as was_under_suspension,
        has_recent_suspension
    from readings_with_previous
    {% if window_start %}
    where reading_date >= {{ window_start }}
    {% endif %}

)

select * from final
