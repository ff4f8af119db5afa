"""Validate a typed batch with its Great Expectations 1.x suite and say which rows failed which rule."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # a government platform phones home to nobody


@dataclass
class RuleOutcome:
    name: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int
    rows: np.ndarray = field(repr=False)  # batch positions (_row) of failing rows
    observed: Any = None
    description: str = ""
    skipped: str | None = None  # why a rule could not run (no reference data, no history yet)


@lru_cache(maxsize=1)
def gx_context():
    """The Great Expectations context the suites run in (ephemeral, made once per process) and its batch
    definition."""
    import threading

    import great_expectations as gx
    from tqdm import tqdm

    # GX draws its (disabled) progress bars with tqdm, whose first bar makes a multiprocessing lock: a
    # named semaphore each task process leaves to the resource tracker. A thread lock does here.
    tqdm.set_lock(threading.RLock())

    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except ImportError:  # pragma: no cover - older layouts
        pass
    batch_definition = (
        context.data_sources.add_pandas("edw_batches")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    return context, batch_definition


def _expectation_class(name: str):
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in name.split("_"))
    try:
        return getattr(gx.expectations, class_name)
    except AttributeError:
        raise ValueError(f"unknown expectation {name!r} (no gx.expectations.{class_name})") from None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def unknown_values_column(column: str) -> str:
    """The derived column a membership rule is validated on: the value where it is not in the
    reference set, else null."""
    return f"_unknown__{column}"


def _membership_check(data: pd.DataFrame, rule: dict) -> tuple[str, dict]:
    """A rule whose value set was read from a reference table (``membership``: column and values).

    Each value is looked up in pandas (a hash lookup) and the unknown values are kept in a derived
    column that must be null, so GX still reports the rule, its failing rows and the unknown values
    themselves, without carrying thousands of reference ids through its expectation configuration."""
    column = rule["membership"]["column"]
    values = data[column]
    known = values.isin(rule["membership"]["values"]) | values.isna()
    data[unknown_values_column(column)] = values.where(~known)
    return "expect_column_values_to_be_null", {"column": unknown_values_column(column)}


def run_suite(suite_name: str, frame: pd.DataFrame, rules: list[dict]) -> tuple[list[RuleOutcome], dict]:
    """Validate ``frame`` (which has a ``_row`` column); rules arrive resolved (no reference/history left)."""
    import great_expectations as gx

    _, batch_definition = gx_context()
    data = frame.drop(columns=[c for c in ("_extra",) if c in frame.columns])  # no rule reads it; it costs
    derived = {name: expr for r in rules for name, expr in r.get("derive", {}).items()}
    if derived:
        for name, expr in derived.items():
            with np.errstate(all="ignore"):
                data[name] = pd.to_numeric(data.eval(expr, engine="python"), errors="coerce").replace(
                    [np.inf, -np.inf], np.nan
                )
    runnable = [r for r in rules if not r.get("skipped")]
    expectations = []
    for r in runnable:
        expectation, kwargs = r["expectation"], r["kwargs"]
        if "membership" in r:
            expectation, kwargs = _membership_check(data, r)
        expectations.append(
            _expectation_class(expectation)(
                **kwargs,
                meta={"rule": r["name"], "severity": r["severity"], "description": r.get("description", "")},
            )
        )
    # validated as it is, not saved in the context: listing a context's suites deserializes them all,
    # 0.1 s a batch once every feed's suite is there (the Data Docs save their own copy)
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
    result = batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": ["_row"],
            "return_unexpected_index_query": False,
        },
    )
    outcomes = []
    by_rule = {r["name"]: r for r in rules}
    for item in result.results:
        meta = item.expectation_config.meta or {}
        r = by_rule[meta["rule"]]
        res = item.result or {}
        index = res.get("unexpected_index_list") or []
        rows = np.array(
            sorted({int(entry["_row"]) for entry in index if isinstance(entry, dict) and "_row" in entry}),
            dtype="int64",
        )
        kwargs = r["kwargs"]
        outcomes.append(
            RuleOutcome(
                name=r["name"],
                expectation=r["expectation"],
                column=kwargs.get("column")
                or kwargs.get("column_A")
                or ",".join(kwargs.get("column_list", []))
                or None,
                severity=r["severity"],
                success=bool(item.success),
                unexpected_count=int(res.get("unexpected_count") or len(rows)),
                rows=rows,
                observed=_json_safe(res.get("observed_value")),
                description=r.get("description", ""),
            )
        )
    for r in rules:
        if r.get("skipped"):
            outcomes.append(
                RuleOutcome(
                    r["name"],
                    r["expectation"],
                    r["kwargs"].get("column"),
                    r["severity"],
                    True,
                    0,
                    np.array([], "int64"),
                    description=r.get("description", ""),
                    skipped=r["skipped"],
                )
            )
    return outcomes, _json_safe(result.to_json_dict())
