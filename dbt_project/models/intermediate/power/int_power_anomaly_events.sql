-- Power-safety events: the flagged intervals of one subject (meter or cable), rule and direction
-- (int_power_anomaly_intervals) joined into one event while they follow each other; up to max_gap_intervals
-- intervals without a reading (missing, or a meter offline) between two flagged ones do not split an event
-- (seed anomaly_thresholds, rule events); the windows of a window rule (abnormal_fluctuation, surge) flagged
-- within rejoin_minutes of each other are one event too. An event runs from the start of its first interval
-- to the end of its last (the last reading + the subject's reading period: 15 minutes for a meter, the
-- sensor's own period for a cable), and must last its rule's minimum: overload and suspension_violation
-- min_intervals flagged intervals, a cable min_minutes of covered time. One physical event gets one warning:
-- of the events of one enterprise and event group that overlap in time, only the most specific rule's is kept
-- (seed anomaly_rule_precedence). Severity from the magnitude (seed anomaly_severity); `reason` says in a
-- sentence what was measured against what. Incremental (replace_build_dates, by started_date): a build
-- replaces the events that start on a day whose intervals changed, or the day after it (power_model_dates).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'started_date'},
        on_schema_change='sync_all_columns',
        post_hook="{{ analyze_table() }}",
        indexes=[{'columns': ['started_date']}] if target.type == 'postgres' else [],
    )
}}

{%- set interval_dates = widen_dates(build_dates, before=2, after=1) %}

with intervals as (

    select * from {{ ref('int_power_anomaly_intervals') }}
    where {{ in_build_dates('reading_date', interval_dates) }}

),

cable_readings as (

    select * from {{ ref('stg_power__cable_temperature_readings') }}
    where {{ in_build_dates('reading_date', interval_dates) }}
        and {{ in_build_days('reading_at', interval_dates) }}

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

settings as (

    select
        cast(max(case when rule = 'events' and parameter = 'max_gap_intervals' then value end) as integer)
            as max_gap_intervals,
        max(case when rule = 'events' and parameter = 'rejoin_minutes' then value end) * 60 as rejoin_seconds,
        cast(max(case when rule = 'overload' and parameter = 'min_intervals' then value end) as integer)
            as overload_min_intervals,
        max(case when rule = 'overload' and parameter = 'load_ratio' then value end) as overload_load_ratio,
        cast(max(case when rule = 'suspension_violation' and parameter = 'min_intervals' then value end) as integer)
            as suspension_min_intervals,
        max(case when rule = 'cable_over_temperature' and parameter = 'min_minutes' then value end)
            as cable_min_minutes,
        cast(max(case when rule = 'baseline' and parameter = 'lookback_days' then value end) as integer)
            as lookback_days,
        cast(max(case when rule = 'abnormal_fluctuation' and parameter = 'window_intervals' then value end) as integer)
            as window_intervals
    from anomaly_thresholds

),

-- a cable's sensor period: the shortest time between two of its readings (15 minutes when it read once)
cable_periods as (

    select
        cable_id as subject_id,
        min(period_seconds) as period_seconds
    from (
        select
            cable_id,
            {{ seconds_between('lag(reading_at) over (partition by cable_id order by reading_at)', 'reading_at') }}
                as period_seconds
        from cable_readings
    ) as gaps
    where period_seconds > 0
    group by cable_id

),

intervals_timed as (

    select
        intervals.*,
        case
            when intervals.rule = 'cable_over_temperature' then coalesce(cable_periods.period_seconds, 900)
            else 900
        end as period_seconds
    from intervals
    left join cable_periods
        on intervals.rule = 'cable_over_temperature'
        and intervals.subject_id = cable_periods.subject_id

),

intervals_sequenced as (

    select
        intervals_timed.*,
        lag(interval_at) over by_subject_rule as previous_flagged_at
    from intervals_timed
    window by_subject_rule as (partition by subject_id, rule, direction order by interval_at)

),

intervals_started as (

    select
        intervals_sequenced.*,
        case
            when previous_flagged_at is null then 1
            -- a reading rule: the reading before this one (missing and offline ones skipped) was flagged
            -- too, and at most max_gap_intervals periods were missed between them
            when rule in ('overload', 'suspension_violation', 'cable_over_temperature')
                and previous_read_at = previous_flagged_at
                and {{ seconds_between('previous_flagged_at', 'interval_at') }}
                <= (settings.max_gap_intervals + 1) * period_seconds
                then 0
            -- a window rule: its intervals follow each other, up to max_gap_intervals apart, or within
            -- rejoin_minutes (one episode whose windows dip under the threshold for a while is one warning)
            when rule in ('abnormal_fluctuation', 'surge')
                and {{ seconds_between('previous_flagged_at', 'interval_at') }}
                <= greatest((settings.max_gap_intervals + 1) * period_seconds, settings.rejoin_seconds)
                then 0
            else 1
        end as is_event_start
    from intervals_sequenced
    cross join settings

),

intervals_numbered as (

    select
        intervals_started.*,
        sum(is_event_start) over (
            partition by subject_id, rule, direction
            order by interval_at
            rows between unbounded preceding and current row
        ) as event_number
    from intervals_started

),

intervals_ranked as (

    select
        intervals_numbered.*,
        row_number() over (
            partition by subject_id, rule, direction, event_number
            order by magnitude desc, interval_at asc
        ) as magnitude_rank
    from intervals_numbered

),

events as (

    select
        subject_id,
        rule,
        direction,
        event_number,
        min(enterprise_id) as enterprise_id,
        min(interval_at) as started_at,
        max(interval_at) as last_interval_at,
        max(period_seconds) as period_seconds,
        count(*) as intervals,
        max(case when magnitude_rank = 1 then observed_value end) as peak_value,
        max(case when magnitude_rank = 1 then threshold_value end) as threshold,
        max(case when magnitude_rank = 1 then reference_value end) as reference_value,
        max(case when magnitude_rank = 1 then before_value end) as before_value,
        max(case when magnitude_rank = 1 then after_value end) as after_value,
        max(magnitude) as magnitude
    from intervals_ranked
    group by subject_id, rule, direction, event_number

),

events_timed as (

    select
        events.*,
        events.last_interval_at + events.period_seconds * interval '1 second' as ended_at
    from events

),

events_qualified as (

    select events_timed.*
    from events_timed
    cross join settings
    where (events_timed.rule = 'overload' and events_timed.intervals >= settings.overload_min_intervals)
        or (
            events_timed.rule = 'suspension_violation'
            and events_timed.intervals >= settings.suspension_min_intervals
        )
        or (
            events_timed.rule = 'cable_over_temperature'
            and {{ seconds_between('events_timed.started_at', 'events_timed.ended_at') }}
            >= 60 * settings.cable_min_minutes
        )
        or events_timed.rule in ('surge', 'abnormal_fluctuation')

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
        lower_rank.direction,
        lower_rank.event_number
    from events_ranked as lower_rank
    inner join events_ranked as higher_rank
        on lower_rank.enterprise_id = higher_rank.enterprise_id
        and lower_rank.event_group = higher_rank.event_group
        and higher_rank.precedence < lower_rank.precedence
        and higher_rank.started_at < lower_rank.ended_at
        and lower_rank.started_at < higher_rank.ended_at

),

events_kept as (

    select events_ranked.*
    from events_ranked
    left join events_outranked
        on events_ranked.subject_id = events_outranked.subject_id
        and events_ranked.rule = events_outranked.rule
        and events_ranked.direction = events_outranked.direction
        and events_ranked.event_number = events_outranked.event_number
    where events_outranked.subject_id is null

),

events_graded as (

    select
        events_kept.*,
        anomaly_severity.severity,
        row_number() over (
            partition by events_kept.subject_id, events_kept.rule, events_kept.direction, events_kept.event_number
            order by anomaly_severity.min_magnitude desc
        ) as severity_rank
    from events_kept
    left join anomaly_severity
        on events_kept.rule = anomaly_severity.rule
        and events_kept.magnitude >= anomaly_severity.min_magnitude

),

events_explained as (

    select
        events_graded.*,
        case
            when rule = 'overload'
                then 'load ' || {{ number_text('peak_value') }} || ' kW reached '
                || {{ number_text('100 * peak_value / reference_value') }} || ' % of the contracted '
                || {{ number_text('reference_value') }} || ' kW (warning from '
                || {{ number_text('100 * settings.overload_load_ratio') }} || ' %) over '
                || cast(intervals as varchar) || ' readings'
            when rule = 'suspension_violation'
                then 'load ' || {{ number_text('peak_value') }} || ' kW ('
                || {{ number_text('100 * peak_value / reference_value') }}
                || ' % of the contracted capacity) while a production-suspension order is in force, over '
                || cast(intervals as varchar) || ' readings'
            when rule = 'surge'
                then 'load rose from ' || {{ number_text('reference_value') }} || ' kW to '
                || {{ number_text('peak_value') }} || ' kW (' || {{ number_text('peak_value / nullif(reference_value, 0)', 1) }}
                || 'x) within 15 minutes and stayed there, a step larger than any on its similar days near that '
                || 'time, above the highest reading near that hour in ' || cast(settings.lookback_days as varchar)
                || ' days (' || {{ number_text('before_value') }} || ' kW)'
            when rule = 'abnormal_fluctuation' and before_value is null and after_value is null
                then '1-hour mean ' || {{ number_text('peak_value') }} || ' kW, '
                || {{ number_text('peak_value / nullif(reference_value, 0)', 1) }}
                || 'x the highest 1-hour mean of the last ' || cast(settings.lookback_days as varchar) || ' days ('
                || {{ number_text('reference_value') }} || ' kW)'
            when rule = 'abnormal_fluctuation'
                then cast(settings.window_intervals * 15 as varchar) || '-minute mean ' || {{ number_text('peak_value') }}
                || ' kW against ' || {{ number_text('reference_value') }} || ' kW on its similar days at that time'
                || coalesce(', ' || {{ number_text('before_value') }} || ' kW before', '')
                || coalesce(' and ' || {{ number_text('after_value') }} || ' kW after', '')
                || case when direction = 'rise' then ' (a rise to ' else ' (a drop to ' end
                || {{ number_text('peak_value / nullif(reference_value, 0)', 2) }}
                || 'x the usual)'
            else
                'cable ' || subject_id || ' at ' || {{ number_text('peak_value', 1) }} || ' C for '
                || {{ number_text(seconds_between('started_at', 'ended_at') ~ ' / 60') }} || ' minutes (warning from '
                || {{ number_text('threshold', 1) }} || ' C for ' || {{ number_text('settings.cable_min_minutes') }}
                || ' minutes)'
        end as reason
    from events_graded
    cross join settings
    where severity_rank = 1

),

events_identified as (

    select
        {{ hash_key(['enterprise_id', 'rule', epoch_seconds('started_at')]) }} as anomaly_id,
        events_explained.*,
        row_number() over (
            partition by enterprise_id, rule, started_at
            order by magnitude desc, subject_id asc
        ) as duplicate_rank
    from events_explained

),

final as (

    select
        anomaly_id,
        subject_id,
        enterprise_id,
        rule,
        direction,
        started_at,
        ended_at,
        {{ local_date('started_at') }} as started_date,
        intervals,
        peak_value,
        threshold,
        magnitude,
        severity,
        reason,
        {{ built_at() }} as _built_at
    from events_identified
    where duplicate_rank = 1
        and {{ in_build_dates(local_date('started_at'), build_dates) }}

)

select * from final
