"""What dbt's Jinja context has and sqlfluff's jinja templater lacks, for `sqlfluff lint` (.sqlfluff beside this
folder loads it as its library_path: each name here is a name in the context of every file it lints).
sqlfluff's own dbt builtins give ref, source, config, var, is_incremental and this; nothing else imports
this package.

The values are those of the production (Postgres) target while dbt parses a project: `execute` is false,
so the macros that query the warehouse (changed_dates, seed_parameter, existing_roles, ...) return their
placeholders without a query, and adapter.dispatch picks the macro dbt-postgres would (postgres__, else
default__).
"""

import datetime
from types import SimpleNamespace

import jinja2

execute = False
target = SimpleNamespace(type="postgres", name="prod", database="emergency_dw", schema="public", threads=4)
run_started_at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
modules = SimpleNamespace(datetime=datetime)


def env_var(name, default=None):
    """The variable's name in place of its value (EDW_PII_SALT and the like are secrets)."""
    return name if default is None else default


class _Adapter:
    @jinja2.pass_context
    def dispatch(self, context, macro_name, macro_namespace=None):
        """The project's `<target type>__<name>` macro, else its `default__<name>` (dbt's order)."""
        for prefix in (f"{target.type}__", "default__"):
            macro = context.resolve_or_missing(prefix + macro_name)
            if macro is not jinja2.runtime.missing:
                return macro
        raise jinja2.UndefinedError(f"no {target.type}__{macro_name} or default__{macro_name} macro")

    def quote(self, identifier):
        return f'"{identifier}"'


adapter = _Adapter()
