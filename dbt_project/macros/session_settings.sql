{# The settings of a build's Postgres sessions (dbt_project.yml's var postgres_session_settings), set before
   each model (the project's pre-hook): a server's defaults are sized for many small queries (work_mem 4 MB
   per sort or hash), while a power model sorts millions of readings in one query (the planner switches some
   models need are their own pre-hooks: window_query_settings). Each setting applies to
   the build's own sessions only; the server and every other client keep theirs. One statement, so that a
   model pays one round trip. Nothing on DuckDB (its bound is the profile's memory_limit). #}
{% macro postgres_session_settings() -%}
    {%- if target.type == 'postgres' -%}
        {%- set settings = var('postgres_session_settings', {}) -%}
        {%- if settings is not mapping -%}
            {{ exceptions.raise_compiler_error(
                "var postgres_session_settings must map Postgres setting names to values, e.g. {work_mem: 256MB};"
                ~ " got " ~ settings) }}
        {%- endif -%}
        {%- if settings -%}
            select
            {%- for name, value in settings.items() %}
                set_config('{{ name | replace("'", "''") }}', '{{ value | string | replace("'", "''") }}', false){{ ',' if not loop.last }}
            {%- endfor %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
