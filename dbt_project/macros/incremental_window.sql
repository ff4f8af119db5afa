{# The window an incremental run rebuilds, for models whose rows a rebuild may remove (an anomaly
   that a late reading merges into another, say): the first local date to rebuild is the latest
   date already built minus the model's lookback_days (seed incremental_lookback_days) and
   extra_days. Computed once per run from {{ this }}, so the model's select and its pre-hook delete
   agree. None on a full build (the model builds everything). #}
{% macro incremental_window_start(date_expression, extra_days=0) -%}
    {%- set lookback_seed = ref('incremental_lookback_days') -%}
    {%- if not execute or model.resource_type != 'model' or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select
            max({{ date_expression }}) as latest_date,
            (
                select coalesce(max(lookback_days), 0)
                from {{ lookback_seed }}
                where model_name = '{{ model.name }}'
            ) as lookback_days
        from {{ this }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set latest = row[0] if row[0] is string else row[0].strftime('%Y-%m-%d') -%}
    {%- set latest_date = modules.datetime.datetime.strptime(latest[:10], '%Y-%m-%d') -%}
    {%- set start = latest_date - modules.datetime.timedelta(days=(row[1] | int) + extra_days) -%}
    {{ return("cast('" ~ start.strftime('%Y-%m-%d') ~ "' as date)") }}
{%- endmacro %}

{# Pre-hook of such a model: delete the rows of the window it is about to rebuild (nothing on a full
   build: an empty hook is skipped). #}
{% macro delete_incremental_window(date_expression, extra_days=0) -%}
    {%- set start = incremental_window_start(date_expression, extra_days) -%}
    {%- if start is not none -%}
        delete from {{ this }} where {{ date_expression }} >= {{ start }}
    {%- endif -%}
{%- endmacro %}

{# True when a model's compile-time queries can run: dbt is executing a model (not parsing, not a
   test) and every relation they read is built. `dbt docs generate` or `dbt compile` on a warehouse
   that has not been built yet compiles such a model without them (as if it had nothing new to add). #}
{% macro relations_built(relations) -%}
    {%- if not execute or model.resource_type != 'model' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- for relation in relations -%}
        {%- if adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) is none -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}
