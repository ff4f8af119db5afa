-- Power anomalies (DESIGN section 5): one row per warning. Consecutive 15-minute intervals of one meter
-- (or cable) that meet a rule form one anomaly, from the first interval's start to the last's; it must
-- last the rule's minimum (seed anomaly_thresholds). One physical event gets one warning: of the
-- anomalies of one enterprise that overlap in time, only the most specific rule's is kept (seed
-- anomaly_rule_precedence). Severity from the magnitude (seed anomaly_severity).
--
-- Two guards beside the thresholds, so that a return to normal is not taken for an event:
-- a surge must start from a normal interval (not from a suspension's standby nor from an abnormal dip,
-- whose end is not a surge), and abnormal fluctuation skips enterprises under a suspension order or
-- whose order ended within the baseline window (their baseline is not normal operation).
--
-- Incremental: a run deletes and rebuilds the anomalies that started from the latest start date
-- built minus lookback_days (seed incremental_lookback_days), reading one day more of readings so that
-- an event crossing midnight keeps its start (and its anomaly_id).

{{
    config(
        materialized='incremental',
        unique_key='anomaly_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_incremental_window(local_date('started_at')) }}",
    )
}}

{%- set window_start = incremental_window_start(local_date('started_at')) %}

with readings as (

    select * from {{ ref('int_power_readings_baselined') }}
    {% if window_start %}
    where reading_date >= {{ window_start }} - 1
    {% endif %}

),

cable_readings as (

    select * from {{ ref('stg_power__cable_temperature_readings') }}
    {% if window_start %}
    where reading_at >= cast({{ window_start }} as timestamp) - interval '2 days'
        and reading_date >= {{ window_start }} - 1
    {% endif %}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

anomaly_severity as (

    select * from {{ ref('anomaly_severity') }}

),

anomaly_rule_precedence as (

    select * from {{ ref('anomaly_rule_precedence') }}

),

rule_settings as (

    select
        max(case when rule = 'overload' and parameter = 'load_ratio' then value end) as overload_load_ratio,
        max(case when rule = 'overload' and parameter = 'min_intervals' then value end) as overload_min_intervals,
        max(case when rule = 'abnormal_fluctuation' and parameter = 'robust_z' then value end)
            as fluctuation_robust_z,
        max(case when rule = 'surge' and parameter = 'step_ratio' then value end) as surge_step_ratio,
        max(case when rule = 'suspension_violation' and parameter = 'load_ratio' then value end)
            as suspension_load_ratio,
        max(case when rule = 'suspension_violation' and parameter = 'min_intervals' then value end)
            as suspension_min_intervals,
        max(case when rule = 'cable_over_temperature' and parameter = 'temperature_c' then value end)
            as cable_temperature_c,
        max(case when rule = 'cable_over_temperature' and parameter = 'min_minutes' then value end)
            as cable_min_minutes
    from anomaly_thresholds

),

overload_intervals as (

    select
        readings.meter_id as subject_id,
        readings.enterprise_id,
        'overload' as rule,
        readings.reading_at,
        readings.load_kw as observed_value,
        rule_settings.overload_load_ratio * readings.contracted_capacity_kw as threshold_value
    from readings
    cross join rule_settings
    where readings.load_kw >= rule_settings.overload_load_ratio * readings.contracted_capacity_kw

),

suspension_violation_intervals as (

    select
        readings.meter_id as subject_id,
        readings.enterprise_id,
        'suspension_violation' as rule,
        readings.reading_at,
        readings.load_kw as observed_value,
        rule_settings.suspension_load_ratio * readings.contracted_capacity_kw as threshold_value
    from readings
    cross join rule_settings
    where readings.is_under_suspension
        and readings.load_kw > rule_settings.suspension_load_ratio * readings.contracted_capacity_kw

),

surge_intervals as (

    select
        readings.meter_id as subject_id,
        readings.enterprise_id,
        'surge' as rule,
        readings.reading_at,
        readings.load_kw as observed_value,
        rule_settings.surge_step_ratio * readings.previous_load_kw as threshold_value
    from readings
    cross join rule_settings
    where readings.previous_load_kw > 0
        and readings.load_kw >= rule_settings.surge_step_ratio * readings.previous_load_kw
        and readings.step_kw > readings.step_percentile_kw
        and not readings.was_under_suspension
        and coalesce(readings.previous_robust_z, 0) >= -rule_settings.fluctuation_robust_z

),

fluctuation_intervals as (

    select
        readings.meter_id as subject_id,
        readings.enterprise_id,
        'abnormal_fluctuation' as rule,
        readings.reading_at,
        readings.load_kw as observed_value,
        readings.median_load_kw
        + sign(readings.robust_z) * rule_settings.fluctuation_robust_z * readings.effective_mad_kw / 0.6745
            as threshold_value,
        abs(readings.robust_z) / rule_settings.fluctuation_robust_z as magnitude
    from readings
    cross join rule_settings
    where abs(readings.robust_z) > rule_settings.fluctuation_robust_z
        and not readings.has_recent_suspension

),

cable_intervals as (

    select
        cable_readings.cable_id as subject_id,
        cable_readings.enterprise_id,
        'cable_over_temperature' as rule,
        cable_readings.reading_at,
        cable_readings.temperature_c as observed_value,
        rule_settings.cable_temperature_c as threshold_value
    from cable_readings
    cross join rule_settings
    where cable_readings.temperature_c >= rule_settings.cable_temperature_c

),

flagged_intervals as (

    select *, observed_value / threshold_value as magnitude from overload_intervals
    union all
    select *, observed_value / threshold_value as magnitude from suspension_violation_intervals
    union all
    select *, observed_value / threshold_value as magnitude from surge_intervals
    union all
    select * from fluctuation_intervals
    union all
    select *, observed_value / threshold_value as magnitude from cable_intervals

),

intervals_sequenced as (

    select
        flagged_intervals.*,
        case
            when lag(reading_at) over by_subject_rule = reading_at - interval '15 minutes' then 0
            else 1
        end as is_event_start
    from flagged_intervals
    window by_subject_rule as (partition by subject_id, rule order by reading_at)

),

intervals_numbered as (

    select
        intervals_sequenced.*,
        sum(is_event_start) over (
            partition by subject_id, rule
            order by reading_at
            rows between unbounded preceding and current row
        ) as event_number
    from intervals_sequenced

),

intervals_ranked as (

    select
        intervals_numbered.*,
        row_number() over (
            partition by subject_id, rule, event_number
            order by magnitude desc, reading_at
        ) as magnitude_rank
    from intervals_numbered

),

events as (

    select
        subject_id,
        rule,
        event_number,
        min(enterprise_id) as enterprise_id,
        min(reading_at) as started_at,
        max(reading_at) as ended_at,
        count(*) as intervals,
        max(case when magnitude_rank = 1 then observed_value end) as peak_value,
        max(case when magnitude_rank = 1 then threshold_value end) as threshold,
        max(magnitude) as magnitude
    from intervals_ranked
    group by subject_id, rule, event_number

),

events_qualified as (

    select events.*
    from events
    cross join rule_settings
    where (events.rule = 'overload' and events.intervals >= rule_settings.overload_min_intervals)
        or (
            events.rule = 'suspension_violation'
            and events.intervals >= rule_settings.suspension_min_intervals
        )
        or (
            events.rule = 'cable_over_temperature'
            and {{ seconds_between('events.started_at', 'events.ended_at') }}
            >= 60 * rule_settings.cable_min_minutes
        )
        or events.rule in ('surge', 'abnormal_fluctuation')

),

events_ranked as (

    select
        events_qualified.*,
        anomaly_rule_precedence.event_group,
        anomaly_rule_precedence.precedence
    from events_qualified
    inner join anomaly_rule_precedence
        on events_qualified.rule = anomaly_rule_precedence.rule

),

events_outranked as (

    select distinct
        lower_rank.subject_id,
        lower_rank.rule,
        lower_rank.event_number
    from events_ranked as lower_rank
    inner join events_ranked as higher_rank
        on lower_rank.enterprise_id = higher_rank.enterprise_id
        and lower_rank.event_group = higher_rank.event_group
        and higher_rank.precedence < lower_rank.precedence
        and higher_rank.started_at <= lower_rank.ended_at
        and lower_rank.started_at <= higher_rank.ended_at

),

events_kept as (

    select events_ranked.*
    from events_ranked
    left join events_outranked
        on events_ranked.subject_id = events_outranked.subject_id
        and events_ranked.rule = events_outranked.rule
        and events_ranked.event_number = events_outranked.event_number
    where events_outranked.subject_id is null

),

events_graded as (

    select
        events_kept.*,
        anomaly_severity.severity,
        row_number() over (
            partition by events_kept.subject_id, events_kept.rule, events_kept.event_number
            order by anomaly_severity.min_magnitude desc
        ) as severity_rank
    from events_kept
    left join anomaly_severity
        on events_kept.rule = anomaly_severity.rule
        and events_kept.magnitude >= anomaly_severity.min_magnitude

),

events_identified as (

    select
        {{ hash_key(['enterprise_id', 'rule', epoch_seconds('started_at')]) }} as anomaly_id,
        events_graded.*,
        row_number() over (
            partition by enterprise_id, rule, started_at
            order by magnitude desc, subject_id
        ) as duplicate_rank
    from events_graded
    where severity_rank = 1
    {% if window_start %}
        and {{ local_date('started_at') }} >= {{ window_start }}
    {% endif %}

),

final as (

    select
        anomaly_id,
        enterprise_id,
        rule,
        started_at,
        ended_at,
        cast(peak_value as numeric(12, 2)) as peak_value,
        cast(threshold as numeric(12, 2)) as threshold,
        severity
    from events_identified
    where duplicate_rank = 1

)

select * from final
