"""How ``warehouse__build`` runs dbt (``EDW_BUILD_MODE``): a setting of its own, readable without
importing Airflow or Cosmos (the command line offers the modes as choices)."""

from __future__ import annotations

import os

BUILD_MODE_ENV = "EDW_BUILD_MODE"
# build: one task running `dbt build` as `edw build` does; cosmos: astronomer-cosmos, a task per model (its
# tests after it), each a dbt invocation of its own; watcher: Cosmos's watcher mode, one `dbt build` (the
# producer task) watched by a deferred task per model. The default is `build`, from the benchmark's scheduler
# stage on Postgres (README, "How warehouse__build runs dbt"): the day's end to the marts took 5 minutes
# with it, where a per-model DAG spends 20-25 s of process start and dbt parse on each of some 165 tasks.
BUILD_MODES = ("build", "cosmos", "watcher")
DEFAULT_BUILD_MODE = "build"


def build_mode() -> str:
    """``EDW_BUILD_MODE``, else the default; an unknown mode is an error naming the known ones."""
    mode = (os.environ.get(BUILD_MODE_ENV) or DEFAULT_BUILD_MODE).strip().lower()
    if mode not in BUILD_MODES:
        raise ValueError(
            f"{BUILD_MODE_ENV}={mode!r}: warehouse__build runs dbt as one of {', '.join(BUILD_MODES)}"
        )
    return mode
