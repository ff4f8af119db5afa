"""Detection quality of the power-anomaly warnings against the simulator's ground truth (`edw evaluate`).

An injected anomaly (``<truth>/<date>/anomalies.parquet``) is *detected* when a warning of
``marts.fct_power_anomalies`` with the same rule and enterprise overlaps its ``[started_at, ended_at]``,
with one 15-minute interval of slack either side. Per rule, on the days whose warnings can be judged
(days with at least ``min_baseline_days`` of history, seed ``anomaly_thresholds``: before that the
abnormal-fluctuation and surge rules have no baseline):

- precision = warnings that match an injected anomaly / warnings,
- recall = injected anomalies detected / injected anomalies.

Only the power utility's rules are judged here (the oversight anomalies of site check-ins are not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .config import LOCAL_TZ
from .warehouse import connect

POWER_RULES = ("overload", "suspension_violation", "surge", "abnormal_fluctuation", "cable_over_temperature")
SLACK = pd.Timedelta(minutes=15)
WARNINGS_SQL = "select anomaly_id, enterprise_id, rule, started_at, ended_at from marts.fct_power_anomalies"
BASELINE_DEPTH_SQL = """
select baseline_date, baseline_days, count(*) as slots
from intermediate.int_power_slot_baselines
group by baseline_date, baseline_days
"""
MIN_BASELINE_DAYS_SQL = """
select max(value) as min_baseline_days from reference.anomaly_thresholds
where rule = 'abnormal_fluctuation' and parameter = 'min_baseline_days'
"""


def _query(warehouse_url: str, sql: str) -> pd.DataFrame:
    warehouse = connect(warehouse_url)
    try:
        return warehouse.query(sql).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any failure means the marts are not there to judge
        raise RuntimeError(
            f"cannot read the power-anomaly marts of {warehouse_url} ({type(exc).__name__}: {exc}); "
            "build them first with `edw build`"
        ) from exc
    finally:
        warehouse.close()


def _utc(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")


def load_truth(truth_dir_root: Path | str, dates: Iterable[dt.date] | None = None) -> pd.DataFrame:
    """The injected power anomalies of the given simulated days (all days found when ``dates`` is None),
    with the simulated day in column ``day``."""
    root = Path(truth_dir_root)
    wanted = None if dates is None else {d.isoformat() for d in dates}
    frames = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        if wanted is not None and folder.name not in wanted:
            continue
        path = folder / "anomalies.parquet"
        if not path.exists():
            continue
        frame = pd.read_parquet(path)
        frame["day"] = dt.date.fromisoformat(folder.name)
        frames.append(frame)
    columns = ["anomaly_id", "rule", "enterprise_id", "started_at", "ended_at", "day"]
    if not frames:
        return pd.DataFrame(columns=columns)
    truth = pd.concat(frames, ignore_index=True)
    truth = truth[truth["rule"].isin(POWER_RULES)][columns].reset_index(drop=True)
    truth["started_at"] = _utc(truth["started_at"])
    truth["ended_at"] = _utc(truth["ended_at"])
    return truth


def load_warnings(warehouse_url: str) -> pd.DataFrame:
    """The warnings of ``marts.fct_power_anomalies``, with the local day they started in column ``day``."""
    warnings = _query(warehouse_url, WARNINGS_SQL)
    warnings["started_at"] = _utc(warnings["started_at"])
    warnings["ended_at"] = _utc(warnings["ended_at"])
    warnings["day"] = warnings["started_at"].dt.tz_convert(LOCAL_TZ).dt.date
    return warnings


def judged_days(warehouse_url: str, min_history_days: int | None = None) -> list[dt.date]:
    """Local days on which most slot baselines have at least ``min_history_days`` days of history
    (default: ``min_baseline_days`` of seed anomaly_thresholds, when the rules are all in force; 28 asks
    for a full baseline window). A few readings delivered a day late do not make a day judgeable."""
    if min_history_days is None:
        min_history_days = int(_query(warehouse_url, MIN_BASELINE_DAYS_SQL)["min_baseline_days"].iloc[0])
    depth = _query(warehouse_url, BASELINE_DEPTH_SQL)
    if depth.empty:
        return []
    depth["deep_enough"] = depth["slots"].where(depth["baseline_days"].astype(int) >= min_history_days, 0)
    shares = depth.groupby("baseline_date")[["deep_enough", "slots"]].sum()
    days = shares.index[shares["deep_enough"] >= 0.5 * shares["slots"]]
    return sorted(pd.to_datetime(pd.Series(days)).dt.date)


def _overlaps(warnings: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Pairs (warning, injected anomaly) of the same rule and enterprise that overlap, with slack."""
    pairs = warnings.merge(truth, on=["rule", "enterprise_id"], suffixes=("_warning", "_truth"))
    overlap = (pairs["started_at_warning"] <= pairs["ended_at_truth"] + SLACK) & (
        pairs["ended_at_warning"] >= pairs["started_at_truth"] - SLACK
    )
    return pairs[overlap]


def score(warnings: pd.DataFrame, truth: pd.DataFrame, dates: Sequence[dt.date]) -> list[dict]:
    """Per rule: injected, warnings, detected, matched warnings, precision and recall on ``dates``.

    ``truth`` may hold the days around ``dates`` too: a warning just after midnight still matches the
    anomaly injected the day before it."""
    days = set(dates)
    judged_truth = truth[truth["day"].isin(days)]
    judged_warnings = warnings[warnings["day"].isin(days)]
    pairs = _overlaps(judged_warnings, truth)
    detected_ids = set(_overlaps(warnings, judged_truth)["anomaly_id_truth"])
    matched_ids = set(pairs["anomaly_id_warning"])
    rows = []
    for rule in POWER_RULES:
        injected = judged_truth[judged_truth["rule"] == rule]
        raised = judged_warnings[judged_warnings["rule"] == rule]
        detected = int(injected["anomaly_id"].isin(detected_ids).sum())
        matched = int(raised["anomaly_id"].isin(matched_ids).sum())
        rows.append(
            {
                "rule": rule,
                "days": len(days),
                "injected": len(injected),
                "warnings": len(raised),
                "detected": detected,
                "matched_warnings": matched,
                "precision": matched / len(raised) if len(raised) else None,
                "recall": detected / len(injected) if len(injected) else None,
            }
        )
    return rows


def evaluate(
    warehouse_url: str,
    truth_dir_root: Path | str,
    dates: Iterable[dt.date] | None = None,
    min_history_days: int | None = None,
) -> list[dict]:
    """Precision and recall per rule of ``marts.fct_power_anomalies`` against the injected anomalies.

    ``dates``: the simulated days to judge; None means every day that has both ground truth and a
    baseline. Days without a baseline of ``min_history_days`` (see ``judged_days``) are never judged."""
    with_baseline = set(judged_days(warehouse_url, min_history_days))
    truth_all = load_truth(truth_dir_root)
    available = set(truth_all["day"]) if len(truth_all) else set()
    chosen = sorted((available if dates is None else set(dates)) & with_baseline)
    return score(load_warnings(warehouse_url), truth_all, chosen)


def evaluate_table(
    warehouse_url: str,
    truth_dir_root: Path | str,
    dates: Iterable[dt.date] | None = None,
    min_history_days: int | None = None,
) -> list[dict]:
    """``evaluate`` plus a last row ``all`` over every rule: rows with rule, days, injected, warnings,
    detected, matched_warnings, precision and recall (None where there is nothing to divide by)."""
    rows = evaluate(warehouse_url, truth_dir_root, dates, min_history_days)
    total = {
        key: sum(r[key] for r in rows) for key in ("injected", "warnings", "detected", "matched_warnings")
    }
    total.update(
        rule="all",
        days=rows[0]["days"] if rows else 0,
        precision=total["matched_warnings"] / total["warnings"] if total["warnings"] else None,
        recall=total["detected"] / total["injected"] if total["injected"] else None,
    )
    return [*rows, total]


def print_table(rows: Sequence[dict], console=None) -> None:
    """The evaluation as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    days = rows[0]["days"] if rows else 0
    table = Table(title=f"Power-anomaly detection against the simulator's truth ({days} judged days)")
    table.add_column("rule")
    for name in ("injected", "warnings", "detected", "precision", "recall"):
        table.add_column(name, justify="right")

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in rows:
        table.add_row(
            row["rule"],
            str(row["injected"]),
            str(row["warnings"]),
            str(row["detected"]),
            share(row["precision"]),
            share(row["recall"]),
            style="bold" if row["rule"] == "all" else None,
        )
    console.print(table)
    if not days:
        console.print("no day to judge: the warehouse has no day with a full baseline and ground truth yet")
