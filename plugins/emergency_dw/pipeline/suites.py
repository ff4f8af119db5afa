"""Each feed's expectation suite: rules generated from the catalog plus hand-written domain rules.

A feed's hand-written rules live in ``expectations/<feed>.json``::

    {"feed": ..., "generated_from_catalog": [rule, ...], "rules": [rule, ...]}

``generated_from_catalog`` is rewritten by ``edw expectations --write`` (never edit it by hand: change
the catalog; it is there for review, the pipeline derives it afresh); ``rules`` is reviewed, hand-written
code. A feed without a file is validated by the catalog's rules alone (a new feed needs none to run). A rule is
``{"name", "expectation", "kwargs", "severity", "description"}`` where ``expectation`` is a Great
Expectations 1.x expectation type and ``severity`` one of:

- ``critical``: a failure fails the batch; nothing of it loads;
- ``row``: the failing rows go to quarantine, the others load;
- ``warn``: reported in the validation results only.

A rule may also carry ``derive`` (new columns computed with ``DataFrame.eval`` before
validation), ``reference`` (the value set is read from a warehouse table at run time; GX validates
the derived column ``_unknown__<column>``, the value where it is not in that set, as null), ``history``
(the row-count band comes from the feed's recent loaded batches: see ``volume.py``) or ``window``
(``{"column", "days_before", "days_after"}``: the bounds of ``expect_column_values_to_be_between`` come
from the batch's interval, widened by those days; a file sent on its own covers the days of its records'
event time, see ``file_interval.py``).

Every feed expected daily (see :func:`expected_daily`) gets a generated ``row_count_in_band`` rule: an
empty or far smaller delivery fails the batch. Every feed gets generated ``window`` rules from the catalog's
``max_age_days`` and ``max_ahead_days``: ``event_time_in_window`` on its event time (where it has one) and
``updated_at_in_window`` on the field it is extracted by (see :func:`window_rules`). A hand-written rule
named like a generated one replaces it (a reviewed exception to the catalog's default): :func:`all_rules`
keeps the hand-written one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..catalog import Feed
from .pipeline_settings import row_count_band_settings

SEVERITIES = ("critical", "row", "warn")
DAILY_SCHEDULES = ("@daily", "0 0 * * *")
ROW_COUNT_RULE = "row_count_in_band"
EVENT_TIME_WINDOW_RULE = "event_time_in_window"
UPDATED_AT_WINDOW_RULE = "updated_at_in_window"


def expectations_dir() -> Path:
    """``EDW_EXPECTATIONS_DIR``, else the repository's ``expectations/`` folder."""
    configured = os.environ.get("EDW_EXPECTATIONS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "expectations"


def rule(name: str, expectation: str, severity: str, description: str, **kwargs: Any) -> dict:
    return {
        "name": name,
        "expectation": expectation,
        "kwargs": kwargs,
        "severity": severity,
        "description": description,
    }


def expected_daily(feed: Feed) -> bool:
    """The feed sends events every day (not a snapshot of reference data): a day without rows is news."""
    return not feed.snapshot and feed.rows_per_day > 0 and feed.schedule in DAILY_SCHEDULES


def row_count_rule(feed: Feed) -> dict:
    """``row_count_in_band`` of a feed expected daily, from the catalog and ``[row_count_band]`` of
    ``pipeline.toml`` (its ``history``: rows per day within low..high x the median of the last ``batches``
    loaded batches once ``min_history`` exist; until then a feed the catalog expects to send at least
    ``floor_from_rows_per_day`` rows a day must send one)."""
    h = row_count_band_settings().history()
    if feed.rows_per_day >= h["floor_from_rows_per_day"]:
        until = f"until {h['min_history']} exist, at least one row"
    else:
        until = f"not judged until {h['min_history']} exist (a quiet day may hold none)"
    return {
        **rule(
            ROW_COUNT_RULE,
            "expect_table_row_count_to_be_between",
            "critical",
            f"{feed.name} sends rows every day (about {feed.rows_per_day:,} a day at full volume), so an empty "
            f"or far smaller delivery is broken upstream: the batch's rows per day lie within "
            f"{h['low']:g}x..{h['high']:g}x the median of its last {h['batches']} loaded batches, widened for "
            f"chance at small counts; {until}",
        ),
        "history": dict(h),
    }


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _window_rule(name: str, column: str, feed: Feed, description: str) -> dict:
    """A ``row`` rule that ``column`` lies within the batch's interval widened by the feed's ``max_age_days``
    before it and ``max_ahead_days`` after it (``rules.py`` sets the bounds from the batch)."""
    window = {"column": column, "days_before": feed.max_age_days, "days_after": feed.max_ahead_days}
    return {
        "name": name,
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": column},
        "window": window,
        "severity": "row",
        "description": description,
    }


def window_rules(feed: Feed) -> list[dict]:
    """``event_time_in_window`` on the feed's event time and ``updated_at_in_window`` on the field it is
    extracted by. How old a record may be is a fact of the feed (its ``max_age_days``, implied by what the
    feed is: events, work items, reference data), so a feed without hand-written rules has them too. A
    timestamp beyond them is a defaulted or mistyped value (1970, next year), not a late record."""
    before, after = _days(feed.max_age_days), _days(feed.max_ahead_days)
    rules = []
    if feed.event_time:
        rules.append(
            _window_rule(
                EVENT_TIME_WINDOW_RULE,
                feed.event_time,
                feed,
                f"{feed.event_time} lies near the batch's interval: at most {before} before it (late records) "
                f"and {after} after it (a clock off by a time zone); a timestamp in 1970 or next year is a "
                "defaulted or mistyped value",
            )
        )
    if feed.incremental_field:
        why = (
            "reference data may go unchanged for years, not for decades"
            if feed.snapshot
            else "records are extracted by it"
        )
        rules.append(
            _window_rule(
                UPDATED_AT_WINDOW_RULE,
                feed.incremental_field,
                feed,
                f"{feed.incremental_field} is not in the future ({after} after the batch's interval at most) "
                f"and at most {before} before it ({why})",
            )
        )
    return rules


def catalog_rules(feed: Feed) -> list[dict]:
    """The generic part of a feed's suite, derived from its catalog declaration."""
    rules = []
    key = list(feed.primary_key)
    if len(key) == 1:
        rules.append(
            rule(
                "unique_key",
                "expect_column_values_to_be_unique",
                "row",
                f"{key[0]} identifies a record",
                column=key[0],
            )
        )
    else:
        rules.append(
            rule(
                "unique_key",
                "expect_compound_columns_to_be_unique",
                "row",
                f"({', '.join(key)}) identifies a record",
                column_list=key,
            )
        )
    for col in feed.columns:
        if not col.nullable:
            rules.append(
                rule(
                    f"not_null__{col.name}",
                    "expect_column_values_to_not_be_null",
                    "row",
                    f"{col.name} is required",
                    column=col.name,
                )
            )
        if col.allowed:
            rules.append(
                rule(
                    f"in_set__{col.name}",
                    "expect_column_values_to_be_in_set",
                    "row",
                    f"{col.name} is one of the {len(col.allowed)} codes of its reference list",
                    column=col.name,
                    value_set=list(col.allowed),
                )
            )
        if col.type in ("integer", "float") and (col.min is not None or col.max is not None):
            bounds = {"min_value": col.min, "max_value": col.max}
            rules.append(
                rule(
                    f"range__{col.name}",
                    "expect_column_values_to_be_between",
                    "row",
                    f"{col.name} within [{col.min}, {col.max}]{' ' + col.unit if col.unit else ''}",
                    column=col.name,
                    **{k: v for k, v in bounds.items() if v is not None},
                )
            )
    for earlier, later in feed.time_order:
        rules.append(
            rule(
                f"order__{earlier}__{later}",
                "expect_column_pair_values_a_to_be_greater_than_b",
                "row",
                f"{later} is not before {earlier}",
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    if expected_daily(feed):
        rules.append(row_count_rule(feed))
    rules.extend(window_rules(feed))
    return rules


def suite_path(feed: Feed) -> Path:
    return expectations_dir() / f"{feed.name}.json"


def load_suite(feed: Feed) -> dict:
    """The feed's suite from ``expectations/``; generated rules come fresh from the catalog."""
    path = suite_path(feed)
    hand_written: list[dict] = []
    if path.exists():
        try:
            hand_written = json.loads(path.read_text(encoding="utf-8")).get("rules", [])
        except json.JSONDecodeError as exc:
            raise ValueError(f"expectation suite {path} is not valid JSON: {exc}") from None
    for item in hand_written:
        if item.get("severity") not in SEVERITIES:
            raise ValueError(
                f"{path}: rule {item.get('name')!r} has severity {item.get('severity')!r}; use one of {SEVERITIES}"
            )
    return {"feed": feed.name, "generated_from_catalog": catalog_rules(feed), "rules": hand_written}


def write_suite(feed: Feed) -> Path:
    """Rewrite (or create) the generated part of a feed's suite file, keeping its hand-written rules."""
    suite = load_suite(feed)
    path = suite_path(feed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def all_rules(suite: dict) -> list[dict]:
    """The suite's rules to run: the generated ones, each replaced by a hand-written rule of its name."""
    written = {r.get("name") for r in suite["rules"]}
    return [*(r for r in suite["generated_from_catalog"] if r["name"] not in written), *suite["rules"]]
