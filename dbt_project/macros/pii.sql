{# Personal data never leaves staging in clear: a salted SHA-256. The salt is EDW_PII_SALT, which has no
   default here: `edw build` and the warehouse__build DAG set it (from the environment, else a random salt
   kept in the data directory); a salt written in the repository would make the hashes reversible. #}
{% macro hash_pii(column) -%}
    {{ return(adapter.dispatch('hash_pii', 'emergency_dw')(column)) }}
{%- endmacro %}

{% macro default__hash_pii(column) -%}
    case when {{ column }} is null then null
         else sha256(concat('{{ env_var("EDW_PII_SALT") }}', cast({{ column }} as varchar))) end
{%- endmacro %}

{% macro postgres__hash_pii(column) -%}
    case when {{ column }} is null then null
         else encode(sha256(convert_to(concat('{{ env_var("EDW_PII_SALT") }}', cast({{ column }} as text)), 'UTF8')), 'hex') end
{%- endmacro %}
