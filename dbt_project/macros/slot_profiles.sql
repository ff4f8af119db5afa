{# The usual profile of each day from its similar days. similar_days: a relation of (meter_id, reading_date,
   loads, steps), a row per similar day of a day, loads and steps the similar day's lists of 96 slots
   (int_power_meter_days). One row per meter_id and reading_date, three lists of 96:
     usual_loads        the median of the slot's loads read (of an even count, the mean of the two middle ones);
     usual_steps        the largest step any similar day made into the slot;
     similar_readings   how many similar days had a load in the slot.
   DuckDB: the slots as rows, the median from ranks (a window's sort spills; an aggregate that holds every
   group's values at once does not, and a backfill's build holds millions of slots: 7 half-scale days, 4.8 M,
   ran out of memory at 1GB). Postgres: each day's lists slot by slot in a subquery of its own (rows per slot
   and similar day, ranked by a window, were a sort of 16 M rows for a quarter-scale week: 52 s, against 10). #}
{% macro slot_profiles(similar_days) -%}
    {{ return(adapter.dispatch('slot_profiles', 'emergency_dw')(similar_days)) }}
{%- endmacro %}

{% macro default__slot_profiles(similar_days) -%}
    select
        meter_id,
        reading_date,
        list(usual_load_kw order by slot_of_day) as usual_loads,
        list(usual_step_kw order by slot_of_day) as usual_steps,
        list(similar_readings order by slot_of_day) as similar_readings
    from (
        select
            meter_id,
            reading_date,
            slot_of_day,
            avg(
                case
                    when load_rank in (
                            cast(floor((load_count + 1) / 2.0) as integer),
                            cast(ceiling((load_count + 1) / 2.0) as integer)
                        )
                        then load_kw
                end
            ) as usual_load_kw,
            max(step_kw) as usual_step_kw,
            count(load_kw) as similar_readings
        from (
            select
                slot_values.*,
                row_number() over (
                    partition by meter_id, reading_date, slot_of_day order by load_kw nulls last
                ) as load_rank,
                count(load_kw) over (partition by meter_id, reading_date, slot_of_day) as load_count
            from (
                select
                    similar_days.meter_id,
                    similar_days.reading_date,
                    slots.slot_of_day,
                    similar_days.loads[slots.slot_of_day + 1] as load_kw,
                    similar_days.steps[slots.slot_of_day + 1] as step_kw
                from {{ similar_days }} as similar_days
                cross join generate_series(0, 95) as slots (slot_of_day)
            ) as slot_values
        ) as ranked_slots
        group by meter_id, reading_date, slot_of_day
    ) as slot_profiles
    group by meter_id, reading_date
{%- endmacro %}

{% macro postgres__slot_profiles(similar_days) -%}
    select
        similar_lists.meter_id,
        similar_lists.reading_date,
        profile.usual_loads,
        profile.usual_steps,
        profile.similar_readings
    from (
        -- the day's similar days as one two-dimensional array each (a row per similar day)
        select
            meter_id,
            reading_date,
            array_agg(loads) as loads,
            array_agg(steps) as steps
        from {{ similar_days }} as similar_days
        group by meter_id, reading_date
    ) as similar_lists
    cross join lateral (
        select
            array_agg(
                (slot_loads.sorted_loads[(slot_loads.load_count + 1) / 2]
                    + slot_loads.sorted_loads[(slot_loads.load_count + 2) / 2]) / 2
                order by slot_loads.slot_of_day
            ) as usual_loads,
            array_agg(slot_loads.usual_step_kw order by slot_loads.slot_of_day) as usual_steps,
            array_agg(slot_loads.load_count order by slot_loads.slot_of_day) as similar_readings
        from (
            select
                -- the arrays unnest row by row: the position's remainder by the slots of a day is the slot
                (slot_values.position - 1) % array_length(similar_lists.loads, 2) as slot_of_day,
                array_agg(slot_values.load_kw order by slot_values.load_kw)
                    filter (where slot_values.load_kw is not null) as sorted_loads,
                count(slot_values.load_kw) as load_count,
                max(slot_values.step_kw) as usual_step_kw
            from unnest(similar_lists.loads, similar_lists.steps)
                with ordinality as slot_values (load_kw, step_kw, position)
            group by 1
        ) as slot_loads
    ) as profile
{%- endmacro %}
