"""The lint of the dbt SQL (`sqlfluff lint dbt_project` in `make test`, configured by dbt_project/.sqlfluff)
lints something: it renders a model through the project's own macros, finds what breaks the house style,
and walks every model (a config or an ignore file that silently skipped them would pass every lint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.linter.discovery import paths_from_path

REPO = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO / "dbt_project"

# a model in the house style, through the macros that need more than sqlfluff's dbt builtins: target in
# its config, adapter.dispatch (local_date, seconds_between), seed_parameter (ref, execute), built_at
# (run_started_at), and a Jinja loop
MODEL = """\
{%- set build_dates = none %}

{{
    config(
        materialized='table',
        indexes=[{'columns': ['reading_date']}] if target.type == 'postgres' else [],
    )
}}

with readings as (

    select * from {{ ref('stg_power__power_load_readings') }}
    where {{ in_build_dates('reading_date', build_dates) }}

),

meters as (

    select * from {{ ref('stg_yjj__enterprise_safety_profiles') }}

),

final as (

    select
        readings.meter_id,
        {{ local_date('readings.reading_at') }} as reading_date,
        {% for column in ['load_kw', 'reading_at'] %}
        max(readings.{{ column }}) as last_{{ column }},
        {% endfor %}
        {{ seconds_between('min(readings.reading_at)', 'max(readings.reading_at)') }} as span_seconds,
        count(*) > {{ seed_parameter('anomaly_thresholds', 'baseline', 'lookback_days', 56) }} as is_long,
        {{ built_at() }} as _built_at
    from readings
    inner join meters
        on readings.enterprise_id = meters.enterprise_id
        and meters.is_major_hazard_source
    group by readings.meter_id, {{ local_date('readings.reading_at') }}

)

select * from final
"""


@pytest.fixture(scope="module")
def lint():
    """Lints SQL as `sqlfluff lint dbt_project`, run at the repository's root, lints a model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        config = FluffConfig.from_path(str(DBT_PROJECT / "models"))
    linter = Linter(config=config)
    fname = str(DBT_PROJECT / "models" / "marts" / "lint_probe.sql")

    def violations(sql: str) -> list[str]:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(REPO)
            linted = linter.lint_string(sql, fname=fname)
        return sorted({violation.rule_code() for violation in linted.get_violations()})

    return violations


def test_a_model_in_the_house_style_renders_through_the_project_macros_and_passes(lint):
    assert lint(MODEL) == []


@pytest.mark.parametrize(
    ("breach", "before", "after"),
    [
        ("CP01", "    select\n", "    SELECT\n"),  # an uppercase keyword
        ("AL01", "inner join meters\n", "inner join meters m\n"),  # a table alias without `as`
        ("AM05", "    inner join meters\n", "    join meters\n"),  # a join not written out
        ("LT04", "        readings.meter_id,\n", "        readings.meter_id\n        , "),  # leading comma
        ("LT08", "),\n\nmeters as (", "),\nmeters as ("),  # CTEs not between blank lines
        ("LT02", "    from readings\n", "  from readings\n"),  # not 4-space indents
        # DuckDB-only syntax in a model's own SQL: it builds on the embedded DuckDB, not in production
        ("PRS", "select * from final", "select * exclude (is_long) from final"),
    ],
)
def test_what_breaks_the_house_style_is_reported(lint, breach: str, before: str, after: str):
    assert MODEL.count(before) == 1
    assert breach in lint(MODEL.replace(before, after))


def test_the_lint_walks_every_model_and_skips_the_macros_and_what_dbt_writes():
    linted = {Path(path).resolve() for path in paths_from_path(str(DBT_PROJECT), working_path=str(REPO))}
    models = {path.resolve() for path in (DBT_PROJECT / "models").rglob("*.sql")}
    assert len(models) > 60
    assert models <= linted
    assert not {path for path in linted if path.is_relative_to(DBT_PROJECT / "macros")}
    assert not {path for path in linted if path.is_relative_to(DBT_PROJECT / "tests" / "generic")}
    assert not {path for path in linted if path.is_relative_to(DBT_PROJECT / "target")}
