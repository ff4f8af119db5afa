-- The daily safety risk index of every monitored enterprise (DESIGN section 5). Each factor score is
-- the sum of its items' points (int_enterprise_risk_points, seed risk_scoring), capped at 100; the
-- risk index is their weighted sum (seed risk_factor_weights), 0-100, rounded to one decimal; the
-- level is the four-colour band the index falls in (seed risk_level_thresholds; index_risk_level), except
-- that an open major hazard forces red (level_reason says which). top_factors names the reasons with the
-- most weighted points, an open major hazard always first (how many: seed risk_parameters).
-- Incremental (replace_build_dates, by risk_date): a build replaces the rows of the enterprise days whose
-- risk points were built since its own last build (macro risk_daily_rebuild; risk_daily_rebuilt_rows),
-- however old; every row carries _built_at.
-- On Postgres, indexed by risk_date too: BI tools read the latest day and the last weeks of every
-- enterprise (reports/bi_queries.sql), which grows by 14,355 rows a day.

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_build_dates',
        meta={'build_dates': 'risk_daily_rebuilt_rows', 'build_dates_column': 'risk_date'},
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['risk_date']}] if target.type == 'postgres' else [],
    )
}}

{%- set rebuild = risk_daily_rebuild() %}

with risk_points as (

    select * from {{ ref('int_enterprise_risk_points') }}
    {% if rebuild is not none %}
    where (enterprise_id, risk_date) in ({{ rebuild }})
    {% endif %}

),

risk_factor_weights as (

    select * from {{ ref('risk_factor_weights') }}

),

risk_level_thresholds as (

    select * from {{ ref('risk_level_thresholds') }}

),

risk_parameters as (

    select * from {{ ref('risk_parameters') }}

),

settings as (

    select cast(max(case when parameter = 'top_factors' then value end) as integer) as top_factors
    from risk_parameters

),

weights as (

    select
        coalesce(max(case when factor = 'inherent' then weight end), 0) as inherent_weight,
        coalesce(max(case when factor = 'management' then weight end), 0) as management_weight,
        coalesce(max(case when factor = 'environment' then weight end), 0) as environment_weight,
        coalesce(max(case when factor = 'monitoring' then weight end), 0) as monitoring_weight
    from risk_factor_weights

),

factor_scores as (

    select
        enterprise_id,
        risk_date,
        least(coalesce(sum(case when factor = 'inherent' then points end), 0), 100) as inherent_score,
        least(coalesce(sum(case when factor = 'management' then points end), 0), 100) as management_score,
        least(coalesce(sum(case when factor = 'environment' then points end), 0), 100) as environment_score,
        least(coalesce(sum(case when factor = 'monitoring' then points end), 0), 100) as monitoring_score,
        max(case when item = 'open_major_hazards' and item_value >= 1 then 1 else 0 end) as has_open_major_hazard
    from risk_points
    group by enterprise_id, risk_date

),

risk_indexed as (

    select
        factor_scores.*,
        cast(
            factor_scores.inherent_score * weights.inherent_weight
            + factor_scores.management_score * weights.management_weight
            + factor_scores.environment_score * weights.environment_weight
            + factor_scores.monitoring_score * weights.monitoring_weight
            as numeric(5, 1)
        ) as risk_index
    from factor_scores
    cross join weights

),

risk_levelled as (

    select
        risk_indexed.*,
        case
            when risk_indexed.has_open_major_hazard = 1 then 'red'
            else risk_level_thresholds.risk_level
        end as risk_level,
        risk_level_thresholds.risk_level as index_risk_level,
        case when risk_indexed.has_open_major_hazard = 1 then 'open_major_hazard' else 'risk_index' end
            as level_reason
    from risk_indexed
    left join risk_level_thresholds
        on risk_indexed.risk_index >= risk_level_thresholds.min_index
        and risk_indexed.risk_index < risk_level_thresholds.max_index

),

reasons_ranked as (

    select
        risk_points.enterprise_id,
        risk_points.risk_date,
        risk_points.reason,
        row_number() over (
            partition by risk_points.enterprise_id, risk_points.risk_date
            order by
                case when risk_points.item = 'open_major_hazards' then 0 else 1 end,
                risk_points.points * risk_factor_weights.weight desc,
                risk_points.item
        ) as reason_rank
    from risk_points
    inner join risk_factor_weights
        on risk_points.factor = risk_factor_weights.factor
    where risk_points.points > 0

),

top_reasons as (

    select
        reasons_ranked.enterprise_id,
        reasons_ranked.risk_date,
        string_agg(reasons_ranked.reason, '; ' order by reasons_ranked.reason_rank) as top_factors
    from reasons_ranked
    cross join settings
    where reasons_ranked.reason_rank <= settings.top_factors
    group by reasons_ranked.enterprise_id, reasons_ranked.risk_date

),

final as (

    select
        risk_levelled.enterprise_id,
        risk_levelled.risk_date,
        cast(risk_levelled.inherent_score as numeric(5, 1)) as inherent_score,
        cast(risk_levelled.management_score as numeric(5, 1)) as management_score,
        cast(risk_levelled.environment_score as numeric(5, 1)) as environment_score,
        cast(risk_levelled.monitoring_score as numeric(5, 1)) as monitoring_score,
        risk_levelled.risk_index,
        risk_levelled.risk_level,
        coalesce(top_reasons.top_factors, '') as top_factors,
        risk_levelled.index_risk_level,
        risk_levelled.level_reason,
        {{ built_at() }} as _built_at
    from risk_levelled
    left join top_reasons
        on risk_levelled.enterprise_id = top_reasons.enterprise_id
        and risk_levelled.risk_date = top_reasons.risk_date

)

select * from final
