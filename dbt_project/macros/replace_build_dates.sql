{# The project's one incremental strategy, `replace_build_dates`: a build replaces the rows of the dates it
   rebuilds. Every incremental model declares it the same way:

       config(
           materialized='incremental',
           incremental_strategy='replace_build_dates',
           meta={'build_dates': 'power_model_dates', 'build_dates_column': 'reading_date'},
       )

   - build_dates_column: the date column the model's rows are keyed by;
   - build_dates: the macro (no arguments) that works out what a build rebuilds from what was loaded or
     built since the model's last build (changed_dates). The model's SQL calls it too, to select the rows it
     rebuilds, so that the delete and the insert agree. It returns
       none                  every date (a first build, or a table built before it carried _built_at);
       a list 'YYYY-MM-DD'   those dates of build_dates_column (in_build_dates: the range and the list);
       a string              a SQL condition on the model's rows, where a build rebuilds some dates of
                             some enterprises only (the risk models: risk_rebuilt_rows);
       a rebuild set         dates of every meter and dates of some meters (the power models: changed_dates
                             with meter_column; rebuild_sets.sql), on build_meters_column (default meter_id);
   - unique_key (optional, dbt's own): a row whose key a rebuilt row now holds is replaced too, whatever its
     date (an incident whose re-delivered call moved to another date). Leave it out when the key holds the
     date: the rows of a rebuilt date are already replaced.

   A build then, in the model's transaction: creates the temporary relation from the model's SQL (dbt),
   deletes the target's rows of the rebuilt dates, deletes the rows of the rebuilt keys, and inserts the
   rebuilt rows. On Postgres the delete and the insert commit together with the rest of the model (dbt's
   BEGIN ... COMMIT around the materialization): a build that fails leaves the last good rows in place. The
   dates are worked out again here, before anything is deleted, from the same bounds as the model's SQL:
   the watermark (the target's latest _built_at) has not moved, and a batch stamped after this build
   started is left to the next build (loaded_since_last_build).

   A first build, or --full-refresh, creates the table from the model's SQL and never calls this. #}
{% macro get_incremental_replace_build_dates_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set rebuilt = rebuilt_rows() | trim -%}
    {%- if rebuilt != 'false' %}
    delete from {{ target }} where {{ rebuilt }};
    {% endif -%}
    {{ get_delete_insert_merge_sql(target, arg_dict['temp_relation'], arg_dict['unique_key'], arg_dict['dest_columns'], arg_dict['incremental_predicates']) }}
{%- endmacro %}

{# The condition on a model's rows that its build rebuilds (see above): 'true' for every date, 'false' for
   none. #}
{% macro rebuilt_rows() -%}
    {%- set column = config.meta_get('build_dates_column') -%}
    {%- set dates_macro = config.meta_get('build_dates') -%}
    {%- if not column or not dates_macro -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'replace_build_dates' needs meta build_dates_column (the date column the rows"
            ~ " are keyed by) and build_dates (the macro naming the dates a build rebuilds) in the config of "
            ~ model.name) }}
    {%- endif -%}
    {%- if dates_macro not in context -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ ": meta build_dates names no macro of the project: " ~ dates_macro) }}
    {%- endif -%}
    {%- set dates = context[dates_macro]() -%}
    {%- if dates is string -%}
        {{ return('(' ~ dates ~ ')') }}
    {%- endif -%}
    {%- if dates is mapping -%}
        {{ return(in_rebuild(column, dates, config.meta_get('build_meters_column') or 'meter_id')) }}
    {%- endif -%}
    {{ return(in_build_dates(column, dates)) }}
{%- endmacro %}
