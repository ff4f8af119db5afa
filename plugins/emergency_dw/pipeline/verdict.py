"""What validation decides about a batch: typed by the catalog, judged by its suite, it fails as a whole
(the first critical rule that failed, or columns that do not match the catalog) or loads with the rows that
failed a ``row`` rule held in quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..catalog import Feed
from .batch import Failure
from .parse import Parsed, SchemaError, parse_batch
from .validate import RuleOutcome, run_suite
from .validation_docs import keep_validation_result


@dataclass
class Verdict:
    """A batch's validation: every rule's outcome, the failure that stops it (None: it loads) and the rows
    (``_row``) it holds in quarantine."""

    parsed: Parsed | None
    outcomes: list[RuleOutcome] = field(default_factory=list)
    failure: Failure | None = None
    quarantined: np.ndarray = field(default_factory=lambda: np.array([], dtype="int64"))

    @property
    def extra_columns(self) -> list[str]:
        return list(self.parsed.extra_columns) if self.parsed else []

    def failed_rules_by_row(self) -> dict[int, list[str]]:
        """Each quarantined row's failed ``row`` rules, in the suite's order."""
        failed: dict[int, list[str]] = {}
        for o in self.outcomes:
            if o.severity == "row" and not o.success:
                for row in o.rows:
                    failed.setdefault(int(row), []).append(o.name)
        return failed


def parse_delivered(feed: Feed, delivered: pa.Table) -> Parsed | Failure:
    """The batch typed by the catalog, or the failure of ``columns_match_catalog`` (a renamed column)."""
    try:
        return parse_batch(feed, delivered)
    except SchemaError as exc:
        return Failure("columns_match_catalog", str(exc))


def judge(feed: Feed, batch_id: str, parsed: Parsed | Failure, rules: list[dict]) -> Verdict:
    """Run the batch's resolved ``rules`` (keeping the result for the Data Docs) and decide."""
    if isinstance(parsed, Failure):
        return Verdict(None, failure=parsed)
    outcomes, gx_result = run_suite(f"{feed.name}__{batch_id}", parsed.frame, rules)
    keep_validation_result(feed, batch_id, gx_result)
    outcomes.append(_types_outcome(parsed))
    verdict = Verdict(parsed, outcomes)
    critical = [o for o in outcomes if o.severity == "critical" and not o.success]
    if critical:
        verdict.failure = Failure(critical[0].name, critical_message(critical[0]))
    row_failures = [o for o in outcomes if o.severity == "row" and not o.success]
    if row_failures:
        verdict.quarantined = np.unique(np.concatenate([o.rows for o in row_failures]))
    return verdict


def _types_outcome(parsed: Parsed) -> RuleOutcome:
    """Parsing as a row rule: the rows with a value that does not convert to its declared type."""
    return RuleOutcome(
        "values_have_declared_types",
        "parse_values",
        None,
        "row",
        not parsed.type_errors,
        len(parsed.type_errors),
        np.array(sorted(parsed.type_errors), dtype="int64"),
        description="every value converts to its declared type",
    )


def critical_message(outcome: RuleOutcome) -> str:
    """What failed the batch, in words: a row count is told as one (an empty delivery says it sent 0 rows)."""
    if outcome.expectation == "expect_table_row_count_to_be_between":
        rows = f"{outcome.observed:,}" if isinstance(outcome.observed, int) else str(outcome.observed)
        return (
            f"the batch holds {rows} rows, outside its band; {outcome.description}. "
            "Ask the department whether the export or the interface broke, then rerun the batch"
        )
    what = outcome.description or outcome.expectation
    return f"{what} failed ({outcome.unexpected_count} unexpected; observed {outcome.observed})"
