-- Each 15-minute power reading with its local slot and the step from the meter's previous interval.
-- Incremental: a run rebuilds the local days from the latest day built minus lookback_days (seed
-- incremental_lookback_days) and reads one day more for the first reading's previous interval.

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

    select * from {{ ref('stg_power__power_load_readings') }}

),

readings_in_window as (

    select
        meter_id,
        enterprise_id,
        reading_at,
        reading_date,
        load_kw
    from readings
    where load_kw is not null
    {% if window_start %}
        -- reading_at (a stored column) lets the warehouse skip old blocks; reading_date decides
        and reading_at >= cast({{ window_start }} as timestamp) - interval '2 days'
        and reading_date >= {{ window_start }} - 1
    {% endif %}

),

readings_with_previous as (

    select
        meter_id,
        enterprise_id,
        reading_at,
        reading_date,
        {{ local_slot('reading_at') }} as slot_of_day,
        load_kw,
        lag(reading_at) over by_meter as previous_reading_at,
        lag(load_kw) over by_meter as previous_reading_load_kw
    from readings_in_window
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
        case
            when previous_reading_at = reading_at - interval '15 minutes'
                then previous_reading_load_kw
        end as previous_load_kw,
        case
            when previous_reading_at = reading_at - interval '15 minutes'
                then load_kw - previous_reading_load_kw
        end as step_kw
    from readings_with_previous
    {% if window_start %}
    where reading_date >= {{ window_start }}
    {% endif %}

)

select * from final
