-- What the power rules could not see, and why: data problems of the meters, never safety warnings.
-- One row per episode (issue):
--   meter_offline               consecutive readings with load 0 and no voltage (the meter or its supply off);
--   missing_readings            15-minute intervals without a reading between two readings of a meter, the
--                               first on the same local day or the day before;
--   meter_silent                a meter that stopped reading for the rest of the day and the next while the
--                               feed read on for an hour or more: replaced, removed or out of reach;
--                               open-ended;
--   implausible_reading         readings above max_plausible_ratio x the contracted capacity;
--   no_contracted_capacity      a metered day of an enterprise whose safety profile has no contracted
--                               capacity: overload and suspension_violation cannot be judged;
--   relative_rules_not_applied  a meter day abnormal_fluctuation and surge do not judge: too little history,
--                               too few similar days or days of its kind, or a suspension order in force or
--                               ended in the lookback;
--   irregular_load              a meter day whose abnormal_fluctuation threshold the meter's own ordinary
--                               swings have raised above the seed's rise_ratio or drop_ratio.
-- The audit page shows them by issue. Incremental (replace_build_dates, by issue_date): a build replaces
-- the episodes of the local dates it rebuilds (power_model_dates). A contracted mart: dbt lets its schema
-- change only by appended columns (on_schema_change append_new_columns or fail).

{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'issue_date'},
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['issue_date']}, {'columns': ['enterprise_id']}] if target.type == 'postgres' else [],
    )
}}

{%- set context_dates = widen_dates(build_dates, before=1, after=1) %}
{#- the day after a build date is read whole (an episode that starts on a build date may run into it); of the
    day before, each meter's last reading (the step into the build date's first reading) #}
{%- set whole_dates = widen_dates(build_dates, after=1) %}

-- read again from the table by each select that reads it (inlined): on Postgres a stored CTE is planned
-- without statistics
with readings as {{ inlined() }} (

    select * from {{ ref('int_power_readings_sequenced') }}
    where {{ in_build_dates('reading_date', context_dates) }}

),

day_context as (

    select * from {{ ref('int_power_meter_day_context') }}
    where {{ in_build_dates('reading_date', build_dates) }}

),

day_thresholds as (

    select * from {{ ref('int_power_meter_day_thresholds') }}
    where {{ in_build_dates('reading_date', build_dates) }}

),

scored as (

    select * from {{ ref('int_power_readings_scored') }}
    where {{ in_build_dates('reading_date', build_dates) }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        cast(max(case when rule = 'baseline' and parameter = 'min_similar_days' then value end) as integer)
            as min_similar_days,
        cast(max(case when rule = 'baseline' and parameter = 'min_level_days' then value end) as integer)
            as min_level_days,
        cast(max(case when rule = 'baseline' and parameter = 'min_kind_days' then value end) as integer)
            as min_kind_days,
        cast(max(case when rule = 'baseline' and parameter = 'lookback_days' then value end) as integer)
            as lookback_days,
        max(case when rule = 'data_quality' and parameter = 'max_plausible_ratio' then value end)
            as max_plausible_ratio,
        max(case when rule = 'baseline' and parameter = 'min_day_factor' then value end) as min_day_factor,
        max(case when rule = 'baseline' and parameter = 'max_day_factor' then value end) as max_day_factor
    from anomaly_thresholds

),

-- the readings the windows below sort: the build dates and the days after whole, of the days before each
-- meter's last reading only (its lead, its state and the feed's last reading of that day are the same)
readings_windowed as (

    {{ readings_with_day_ends('readings', whole_dates, context_dates) }}

),

readings_ordered as (

    select
        readings_windowed.*,
        lag(reading_at) over by_meter as previous_reading_at,
        lag(reading_state) over by_meter as previous_reading_state,
        lead(reading_at) over by_meter as next_reading_at
    from readings_windowed
    window by_meter as (partition by meter_id order by reading_at)

),

-- the feed's last reading of each local day
feed_days as (

    select reading_date, max(reading_at) as last_reading_at
    from readings_windowed
    group by reading_date

),

-- a meter's last reading before a silence of the rest of that day and the next, and the feed's last reading
-- over those two days (what a build of one day reads, so a full build says the same)
meter_last_readings as (

    select
        readings_ordered.meter_id,
        readings_ordered.enterprise_id,
        readings_ordered.reading_at,
        max(feed_days.last_reading_at) as feed_last_reading_at
    from readings_ordered
    inner join feed_days
        on feed_days.reading_date between readings_ordered.reading_date and readings_ordered.reading_date + 1
    where readings_ordered.next_reading_at is null
        or {{ local_date('readings_ordered.next_reading_at') }} > readings_ordered.reading_date + 1
    group by readings_ordered.meter_id, readings_ordered.enterprise_id, readings_ordered.reading_at

),

-- runs of offline (or implausible) readings: a new run where the reading before had another state
state_runs as (

    select
        readings_ordered.*,
        sum(case when previous_reading_state is distinct from reading_state then 1 else 0 end) over (
            partition by meter_id order by reading_at rows between unbounded preceding and current row
        ) as state_run
    from readings_ordered

),

state_episodes as (

    select
        meter_id,
        max(enterprise_id) as enterprise_id,
        case when max(reading_state) = 'offline' then 'meter_offline' else 'implausible_reading' end as issue,
        min(reading_at) as started_at,
        max(reading_at) + interval '15 minutes' as ended_at,
        count(*) as readings,
        case
            when max(reading_state) = 'offline'
                then 'load 0 with no voltage: the meter or its supply was off (no warning is raised on it)'
            else 'up to ' || {{ number_text('max(load_kw)') }} || ' kW against a contracted '
                || {{ number_text('max(contracted_capacity_kw)') }}
                || ' kW: more than the connection can carry, so the meter misread (no rule judges it)'
        end as detail
    from state_runs
    where reading_state in ('offline', 'implausible')
    group by meter_id, state_run

),

gap_episodes as (

    select
        meter_id,
        enterprise_id,
        'missing_readings' as issue,
        previous_reading_at + interval '15 minutes' as started_at,
        reading_at as ended_at,
        cast({{ seconds_between('previous_reading_at', 'reading_at') }} / 900 - 1 as integer) as readings,
        'no reading delivered for these intervals (events across them are not split)' as detail
    from readings_ordered
    where reading_at > previous_reading_at + interval '15 minutes'
        -- a reading of the same or the day before: a longer silence is judged by the days it covers
        -- (meter_silent, relative_rules_not_applied), and what a build reads stays the same, full or not
        and {{ local_date('previous_reading_at') }} >= reading_date - 1

),

silent_meters as (

    select
        meter_id,
        enterprise_id,
        'meter_silent' as issue,
        reading_at + interval '15 minutes' as started_at,
        cast(null as timestamp with time zone) as ended_at,
        0 as readings,
        'the meter has not read since (replaced, removed or out of reach) while the feed read until '
        || cast(feed_last_reading_at as varchar) as detail
    from meter_last_readings
    where reading_at <= feed_last_reading_at - interval '1 hour'

),

capacity_days as (

    select
        meter_id,
        max(enterprise_id) as enterprise_id,
        'no_contracted_capacity' as issue,
        min(reading_at) as started_at,
        max(reading_at) + interval '15 minutes' as ended_at,
        count(*) as readings,
        'the safety profile gives no contracted capacity: overload and suspension_violation cannot be judged'
            as detail
    from readings
    where contracted_capacity_kw is null
        and {{ in_build_dates('reading_date', build_dates) }}
    group by meter_id, reading_date

),

suspension_days as (

    select
        meter_id,
        reading_date,
        max(case when has_recent_suspension then 1 else 0 end) as has_recent_suspension,
        max(day_factor) as day_factor,
        min(reading_at) as first_reading_at,
        max(reading_at) as last_reading_at,
        count(*) as readings
    from scored
    group by meter_id, reading_date

),

unjudged_days as (

    select
        day_context.meter_id,
        day_context.enterprise_id,
        'relative_rules_not_applied' as issue,
        suspension_days.first_reading_at as started_at,
        suspension_days.last_reading_at + interval '15 minutes' as ended_at,
        suspension_days.readings,
        'abnormal_fluctuation and surge do not judge this day: '
        || case
            when day_context.level_kw is null
                then 'fewer than ' || cast(settings.min_level_days as varchar) || ' complete days of history ('
                || cast(day_context.complete_history_days as varchar) || ')'
            when day_context.similar_days < settings.min_similar_days
                then 'fewer than ' || cast(settings.min_similar_days as varchar) || ' similar days ('
                || cast(day_context.similar_days as varchar) || ')'
            when suspension_days.day_factor not between settings.min_day_factor and settings.max_day_factor
                then 'the day''s load is ' || {{ number_text('suspension_days.day_factor', 2) }}
                || 'x its similar days'' as a whole: an unusual day (a plant mostly at rest, a meter reading a part)'
            when day_context.kind_history_days < settings.min_kind_days
                then 'fewer than ' || cast(settings.min_kind_days as varchar) || ' complete days of its kind ('
                || day_context.day_kind || ', ' || cast(day_context.kind_history_days as varchar) || ')'
            else 'a production-suspension order is in force or ended within '
                || cast(settings.lookback_days as varchar) || ' days (its history is not normal operation)'
        end as detail
    from day_context
    cross join settings
    inner join suspension_days
        on day_context.meter_id = suspension_days.meter_id
        and day_context.reading_date = suspension_days.reading_date
    where day_context.level_kw is null
        or day_context.similar_days < settings.min_similar_days
        or day_context.kind_history_days < settings.min_kind_days
        or suspension_days.day_factor not between settings.min_day_factor and settings.max_day_factor
        or suspension_days.has_recent_suspension = 1

),

irregular_days as (

    select
        day_thresholds.meter_id,
        day_context.enterprise_id,
        'irregular_load' as issue,
        suspension_days.first_reading_at as started_at,
        suspension_days.last_reading_at + interval '15 minutes' as ended_at,
        suspension_days.readings,
        'abnormal_fluctuation warns from a change of '
        || {{ number_text('exp(greatest(day_thresholds.rise_threshold, day_thresholds.drop_threshold))', 1) }}
        || 'x instead of ' || {{ number_text('exp(day_thresholds.base_rise_threshold)', 2) }}
        || 'x (a rise) or ' || {{ number_text('exp(day_thresholds.base_drop_threshold)', 2) }}
        || 'x (a drop): this meter''s ordinary days swing that much' as detail
    from day_thresholds
    inner join day_context
        on day_thresholds.meter_id = day_context.meter_id
        and day_thresholds.reading_date = day_context.reading_date
    inner join suspension_days
        on day_thresholds.meter_id = suspension_days.meter_id
        and day_thresholds.reading_date = suspension_days.reading_date
    where day_thresholds.rise_threshold > day_thresholds.base_rise_threshold
        or day_thresholds.drop_threshold > day_thresholds.base_drop_threshold

),

episodes as (

    select * from state_episodes
    union all
    select * from gap_episodes
    union all
    select * from silent_meters
    union all
    select * from capacity_days
    union all
    select * from unjudged_days
    union all
    select * from irregular_days

),

final as (

    select
        {{ hash_key(['meter_id', 'issue', epoch_seconds('started_at')]) }} as issue_id,
        meter_id,
        enterprise_id,
        issue,
        {{ local_date('started_at') }} as issue_date,
        started_at,
        ended_at,
        readings,
        detail,
        {{ built_at() }} as _built_at
    from episodes
    where {{ in_build_dates(local_date('started_at'), build_dates) }}

)

select * from final
