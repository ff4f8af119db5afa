-- The 110, 119 and 120 calls as one list of incidents (one row per incident_id).

-- A view: the incremental marts read only the days they rebuild; a table here would copy every call
-- of the whole history every day.
{{ config(materialized='view') }}

with alerts_110 as (

    select * from {{ ref('stg_gaj__alerts_110') }}

),

alerts_119 as (

    select * from {{ ref('stg_xfj__alerts_119') }}

),

alerts_120 as (

    select * from {{ ref('stg_wjw__alerts_120') }}

),

unioned as (

    {% for channel_alerts in ['alerts_110', 'alerts_119', 'alerts_120'] %}
    select
        incident_id,
        channel,
        event_type_code,
        priority,
        town_code,
        received_at,
        received_date,
        _loaded_at
    from {{ channel_alerts }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
