-- The thresholds of abnormal_fluctuation for each meter and local day (seed anomaly_thresholds): a window
-- warns when its rise_score (drop_score) exceeds ln(rise_ratio) (ln(drop_ratio)), or adaptive_multiplier x the
-- adaptive_quantile of the meter's daily highest scores over the adaptive_days before the day (from
-- adaptive_min_days of them) when that is higher. A meter whose load ordinarily swings by 2x within hours
-- (a batch process, a plant that runs when orders come) thus needs more than its ordinary days reach: its
-- ordinary days do not warn, and fct_power_data_quality says its threshold is raised.
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- whose scores changed and of that meter's adaptive_days after each (power_model_dates).

{%- set build_dates = power_model_dates() %}
{%- set adaptive_days = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'adaptive_days', 28) | int %}
{%- set adaptive_quantile = seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'adaptive_quantile', 0.75) %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        indexes=[{'columns': ['meter_id', 'reading_date'], 'unique': True}] if target.type == 'postgres' else [],
    )
}}

{%- set history_dates = widen_dates(rebuild_dates(build_dates), before=adaptive_days) %}

with day_scores as (

    select * from {{ ref('int_power_meter_day_scores') }}
    where {{ in_build_dates('reading_date', history_dates) }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        max(case when parameter = 'rise_ratio' then value end) as rise_ratio,
        max(case when parameter = 'drop_ratio' then value end) as drop_ratio,
        max(case when parameter = 'adaptive_multiplier' then value end) as adaptive_multiplier,
        cast(max(case when parameter = 'adaptive_days' then value end) as integer) as adaptive_days,
        cast(max(case when parameter = 'adaptive_min_days' then value end) as integer) as adaptive_min_days
    from anomaly_thresholds
    where rule = 'abnormal_fluctuation'

),

target_days as (

    select meter_id, reading_date
    from day_scores
    where {{ in_rebuild('reading_date', build_dates) }}

),

typical_scores as (

    select
        target_days.meter_id,
        target_days.reading_date,
        count(history.max_rise_score) as history_days,
        {{ continuous_percentile('history.max_rise_score', adaptive_quantile) }} as typical_rise_score,
        {{ continuous_percentile('history.max_drop_score', adaptive_quantile) }} as typical_drop_score
    from target_days
    cross join settings
    left join day_scores as history
        on target_days.meter_id = history.meter_id
        and history.reading_date >= target_days.reading_date - settings.adaptive_days
        and history.reading_date < target_days.reading_date
    group by target_days.meter_id, target_days.reading_date

),

final as (

    select
        typical_scores.meter_id,
        typical_scores.reading_date,
        typical_scores.history_days,
        typical_scores.typical_rise_score,
        typical_scores.typical_drop_score,
        case
            when typical_scores.history_days >= settings.adaptive_min_days
                then greatest(ln(settings.rise_ratio), settings.adaptive_multiplier * typical_scores.typical_rise_score)
            else ln(settings.rise_ratio)
        end as rise_threshold,
        case
            when typical_scores.history_days >= settings.adaptive_min_days
                then greatest(ln(settings.drop_ratio), settings.adaptive_multiplier * typical_scores.typical_drop_score)
            else ln(settings.drop_ratio)
        end as drop_threshold,
        ln(settings.rise_ratio) as base_rise_threshold,
        ln(settings.drop_ratio) as base_drop_threshold,
        {{ built_at() }} as _built_at
    from typical_scores
    cross join settings

)

select * from final
