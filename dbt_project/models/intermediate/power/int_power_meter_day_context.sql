-- What is usual for a meter on a local day, from the lookback_days before it (seed anomaly_thresholds,
-- rule baseline): the input of the relative rules (abnormal_fluctuation, surge).
--   level_kw              the meter's working level: the median of day_high_kw over the complete days of
--                         the lookback (from min_level_days of them);
--   operating_pattern     learned from those days: continuous (Saturdays and rest days run at
--                         active_ratio of a working day or more), six_day (Saturdays do), else five_day;
--   similar_dates         the similar_days most similar complete days of the lookback, no farther than the
--                         nearest + similar_margin: nearest in hourly
--                         load shape (mean over the hours read in both of |difference| / level_kw, each
--                         capped at distance_cap), a day of another kind (working day / Saturday / Sunday
--                         and holiday, merged as the operating pattern says) kind_penalty farther: a public
--                         holiday is compared with Sundays first, a six-day plant's Saturday with its
--                         working days; a holiday worked like a working day finds working days;
--   lookback_hourly_highs the highest reading of each local hour over the lookback (a surge must exceed it);
--   lookback_max_hour_mean_kw the highest 1-hour mean of the lookback (a new peak must exceed it).
--   kind_history_days     the complete days of the lookback of the day's kind (as the operating pattern
--                         groups kinds): a Sunday is not judged before min_kind_days Sundays or holidays
--                         are known, however like the working days it looks.
-- A day is judged by the relative rules only with a level, min_similar_days similar days and min_kind_days
-- days of its kind.
-- Incremental (replace_build_dates, by reading_date and meter): a build replaces the rows of the meter days
-- int_power_meter_days rebuilt and of every later day of that meter whose lookback holds one (a late day
-- changes what is usual for the 56 days after it); see power_model_dates. It reads every meter's history of
-- those dates (a lookback's worth of dates, whichever meters they are rebuilt for).

{%- set lookback = seed_parameter('anomaly_thresholds', 'baseline', 'lookback_days', 56) | int %}
{%- set build_dates = power_model_dates() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date', 'build_meters_column': 'meter_id'},
        on_schema_change='sync_all_columns',
        pre_hook="{{ window_query_settings() }}",
        post_hook="{{ analyze_table() }}",
        indexes=[
            {'columns': ['meter_id', 'reading_date'], 'unique': True},
            {'columns': ['reading_date']},
            {'columns': ['_built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{%- set history_dates = widen_dates(rebuild_dates(build_dates), before=lookback) %}

with meter_days as (

    select * from {{ ref('int_power_meter_days') }}

),

anomaly_thresholds as (

    select * from {{ ref('anomaly_thresholds') }}

),

settings as (

    select
        cast(max(case when parameter = 'lookback_days' then value end) as integer) as lookback_days,
        cast(max(case when parameter = 'similar_days' then value end) as integer) as similar_days,
        cast(max(case when parameter = 'min_level_days' then value end) as integer) as min_level_days,
        cast(max(case when parameter = 'min_common_hours' then value end) as integer) as min_common_hours,
        max(case when parameter = 'kind_penalty' then value end) as kind_penalty,
        max(case when parameter = 'distance_cap' then value end) as distance_cap,
        max(case when parameter = 'similar_margin' then value end) as similar_margin,
        max(case when parameter = 'active_ratio' then value end) as active_ratio
    from anomaly_thresholds
    where rule = 'baseline'

),

target_days as (

    select * from meter_days
    where {{ in_rebuild('reading_date', build_dates) }}

),

history_days as (

    select * from meter_days
    where {{ in_build_dates('reading_date', history_dates) }}

),

day_pairs as (

    select
        target_days.meter_id,
        target_days.reading_date,
        target_days.day_kind,
        history_days.reading_date as history_date,
        history_days.day_kind as history_day_kind,
        history_days.is_complete,
        history_days.day_high_kw,
        history_days.day_mean_kw,
        history_days.max_hour_mean_kw,
        target_days.hourly_loads,
        history_days.hourly_loads as history_hourly_loads,
        history_days.hourly_highs as history_hourly_highs
    from target_days
    cross join settings
    inner join history_days
        on target_days.meter_id = history_days.meter_id
        and history_days.reading_date >= target_days.reading_date - settings.lookback_days
        and history_days.reading_date < target_days.reading_date

),

levels as (

    select
        day_pairs.meter_id,
        day_pairs.reading_date,
        case
            when count(case when day_pairs.is_complete then day_pairs.day_high_kw end) >= max(settings.min_level_days)
                then {{ continuous_percentile('case when day_pairs.is_complete then day_pairs.day_high_kw end', 0.5) }}
        end as level_kw,
        count(case when day_pairs.is_complete then 1 end) as complete_history_days,
        avg(case when day_pairs.is_complete and day_pairs.history_day_kind = 'working_day' then day_pairs.day_mean_kw end)
            as working_day_mean_kw,
        avg(case when day_pairs.is_complete and day_pairs.history_day_kind = 'saturday' then day_pairs.day_mean_kw end)
            as saturday_mean_kw,
        avg(
            case
                when day_pairs.is_complete and day_pairs.history_day_kind in ('sunday', 'holiday')
                    then day_pairs.day_mean_kw
            end
        ) as rest_day_mean_kw,
        count(case when day_pairs.is_complete and day_pairs.history_day_kind = 'working_day' then 1 end)
            as working_days,
        max(day_pairs.max_hour_mean_kw) as lookback_max_hour_mean_kw
    from day_pairs
    cross join settings
    group by day_pairs.meter_id, day_pairs.reading_date

),

patterns as (

    select
        levels.*,
        case
            when levels.working_days < settings.min_level_days or not levels.working_day_mean_kw > 0 then 'five_day'
            when levels.saturday_mean_kw >= settings.active_ratio * levels.working_day_mean_kw
                and levels.rest_day_mean_kw >= settings.active_ratio * levels.working_day_mean_kw
                then 'continuous'
            when levels.saturday_mean_kw >= settings.active_ratio * levels.working_day_mean_kw then 'six_day'
            else 'five_day'
        end as operating_pattern
    from levels
    cross join settings

),

-- the lookback's highest reading of each hour of the day, over every day read (complete or not): 24 maxima
-- of the day pairs' lists, not the lists unnested (a row per pair and hour: a sort of 6.7 M rows for a
-- quarter-scale week on Postgres, 10 s)
lookback_highs as (

    select
        meter_id,
        reading_date,
        array[
            {%- for hour in range(1, 25) %}
            max(history_hourly_highs[{{ hour }}]){{ ',' if not loop.last }}
            {%- endfor %}
        ] as lookback_hourly_highs
    from day_pairs
    group by meter_id, reading_date

),

-- the kind group a day is compared within: the operating pattern merges the kinds it runs alike
grouped_pairs as (

    select
        day_pairs.meter_id,
        day_pairs.reading_date,
        day_pairs.history_date,
        case
            when patterns.operating_pattern = 'continuous' then 'any'
            when patterns.operating_pattern = 'six_day' and day_pairs.day_kind in ('working_day', 'saturday')
                then 'working'
            when day_pairs.day_kind in ('sunday', 'holiday') then 'rest'
            else day_pairs.day_kind
        end as kind_group,
        case
            when patterns.operating_pattern = 'continuous' then 'any'
            when patterns.operating_pattern = 'six_day' and day_pairs.history_day_kind in ('working_day', 'saturday')
                then 'working'
            when day_pairs.history_day_kind in ('sunday', 'holiday') then 'rest'
            else day_pairs.history_day_kind
        end as history_kind_group,
        patterns.level_kw,
        day_pairs.hourly_loads,
        day_pairs.history_hourly_loads
    from day_pairs
    inner join patterns
        on day_pairs.meter_id = patterns.meter_id
        and day_pairs.reading_date = patterns.reading_date
    where day_pairs.is_complete
        and patterns.level_kw > 0

),

-- a pair's distance over the 24 hours read on both days, from the two lists element by element (a row per
-- pair and hour, grouped again, cost a sort of 6.5 M rows for a quarter-scale week on Postgres, 20 s)
hour_distances as (

    select
        grouped_pairs.meter_id,
        grouped_pairs.reading_date,
        grouped_pairs.history_date,
        grouped_pairs.kind_group,
        grouped_pairs.history_kind_group,
        -- an hour not read on both days has no distance (macro sum_over_hours_read)
        {{ sum_over_hours_read(
            'grouped_pairs.hourly_loads', 'grouped_pairs.history_hourly_loads',
            'least(abs({a} - {b}) / grouped_pairs.level_kw, settings.distance_cap)'
        ) }} as distance_sum,
        {{ sum_over_hours_read('grouped_pairs.hourly_loads', 'grouped_pairs.history_hourly_loads', '1') }}
            as common_hours
    from grouped_pairs
    cross join settings

),

distances as (

    select
        hour_distances.meter_id,
        hour_distances.reading_date,
        hour_distances.history_date,
        -- rounded, so that a rebuild ranks two equally similar days the same way whatever the order of the sum
        cast(
            cast(
                hour_distances.distance_sum / hour_distances.common_hours
                + case
                    when hour_distances.kind_group <> hour_distances.history_kind_group then settings.kind_penalty
                    else 0
                end
                as decimal(18, 9)
            )
            as double precision
        ) as distance
    from hour_distances
    cross join settings
    where hour_distances.common_hours >= settings.min_common_hours
        and hour_distances.common_hours > 0

),

distances_ranked as (

    select
        distances.*,
        row_number() over (
            partition by meter_id, reading_date order by distance asc, history_date desc
        ) as similarity_rank,
        min(distance) over (partition by meter_id, reading_date) as nearest_distance
    from distances

),

kind_history as (

    select
        meter_id,
        reading_date,
        count(case when kind_group = history_kind_group then 1 end) as kind_history_days
    from grouped_pairs
    group by meter_id, reading_date

),

similar_days as (

    select
        distances_ranked.meter_id,
        distances_ranked.reading_date,
        {{ ordered_list('distances_ranked.history_date', 'distances_ranked.similarity_rank') }} as similar_dates,
        {{ ordered_list('distances_ranked.distance', 'distances_ranked.similarity_rank') }} as similar_distances,
        count(*) as similar_days
    from distances_ranked
    cross join settings
    where distances_ranked.similarity_rank <= settings.similar_days
        and distances_ranked.distance <= distances_ranked.nearest_distance + settings.similar_margin
    group by distances_ranked.meter_id, distances_ranked.reading_date

),

final as (

    select
        target_days.meter_id,
        target_days.reading_date,
        target_days.enterprise_id,
        target_days.day_kind,
        patterns.level_kw,
        patterns.operating_pattern,
        coalesce(patterns.complete_history_days, 0) as complete_history_days,
        coalesce(kind_history.kind_history_days, 0) as kind_history_days,
        coalesce(similar_days.similar_days, 0) as similar_days,
        similar_days.similar_dates,
        similar_days.similar_distances,
        lookback_highs.lookback_hourly_highs,
        patterns.lookback_max_hour_mean_kw,
        {{ built_at() }} as _built_at
    from target_days
    left join patterns
        on target_days.meter_id = patterns.meter_id
        and target_days.reading_date = patterns.reading_date
    left join similar_days
        on target_days.meter_id = similar_days.meter_id
        and target_days.reading_date = similar_days.reading_date
    left join lookback_highs
        on target_days.meter_id = lookback_highs.meter_id
        and target_days.reading_date = lookback_highs.reading_date
    left join kind_history
        on target_days.meter_id = kind_history.meter_id
        and target_days.reading_date = kind_history.reading_date

)

select * from final
