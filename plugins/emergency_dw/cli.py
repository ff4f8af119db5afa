"""The ``edw`` command (DESIGN section 6)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import catalog
from .config import default_date, settings

console = Console(width=None if sys.stdout.isatty() else 140)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"--scale must be within (0, 10]; 1 is full scale, got {text}")
    return value


# ---------------------------------------------------------------- catalog
def cmd_catalog(args: argparse.Namespace) -> int:
    feeds = catalog.all_feeds()
    if args.seeds:
        from .catalog.seeds import write_reference_seeds

        for path in write_reference_seeds(Path(args.seeds)):
            console.print(f"wrote {path}")
        return 0
    if args.json:
        print(json.dumps([f.to_dict() for f in feeds], ensure_ascii=False, indent=2))
        return 0
    table = Table(
        title=f"Source catalog: {len(feeds)} feeds from {len({f.department for f in feeds})} providers"
    )
    for header in ("department", "feed", "connector", "schedule", "rows/day"):
        table.add_column(header, justify="right" if header == "rows/day" else "left")
    for feed in feeds:
        dept = catalog.department(feed.department)
        table.add_row(
            f"{dept.name_zh} ({dept.code})",
            feed.name,
            feed.connector_kind,
            feed.schedule,
            f"{feed.rows_per_day:,}",
        )
    console.print(table)
    return 0


# ---------------------------------------------------------------- simulate
def _simulate(
    date: dt.date,
    days: int,
    scale: float,
    seed: int | None,
    scenario: str | None,
    db_url: str | None,
    feeds: list[str] | None,
) -> tuple[list, Path]:
    from .simulator.run import Simulator, days_from
    from .simulator.scenario import load_scenario

    sources = settings().sources_dir
    sim = Simulator(
        sources, scale=scale, seed=seed, scenario=load_scenario(scenario, seed=seed), db_url=db_url
    )
    results = []
    dates = days_from(date, days)
    with console.status("") as status:
        for day in dates:

            def progress(result, day=day):
                status.update(f"simulating {day}: {result.feed} ({result.rows:,} rows)")

            started = time.perf_counter()
            day_results = sim.simulate_day(day, feeds=feeds, on_feed=progress)
            results.extend(day_results)
            console.print(
                f"[green]simulated[/] {day}: {sum(r.rows for r in day_results):,} rows in {len(day_results)} feeds, "
                f"{time.perf_counter() - started:.1f} s"
            )
    return results, sources


def _print_simulation(results: list, sources: Path) -> None:
    from .simulator.run import source_db_url

    table = Table(title="Simulated sources")
    for header in ("feed", "connector", "days", "rows", "defects", "late rows", "anomalies"):
        table.add_column(header, justify="left" if header in ("feed", "connector") else "right")
    by_feed: dict[str, list] = {}
    for r in results:
        by_feed.setdefault(r.feed, []).append(r)
    for name, rows in by_feed.items():
        table.add_row(
            name,
            catalog.get_feed(name).connector_kind,
            str(len(rows)),
            f"{sum(r.rows for r in rows):,}",
            str(sum(r.defects for r in rows)),
            str(sum(r.late_rows for r in rows)),
            str(sum(r.anomalies for r in rows)),
        )
    console.print(table)
    console.print(
        "\n".join(
            [
                f"[bold]Where the data is[/] (under {sources}):",
                f"  HTTP APIs' records   {sources / 'http'}   (serve them: edw simulate serve)",
                f"  source database      {source_db_url(sources)}",
                f"  file drops           {sources / 'drop'}/<dept>/<feed>/incoming",
                f"  ground truth         {sources / 'truth'}/<date>/ (defects.parquet, anomalies.parquet, manifest.json)",
            ]
        )
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.action == "serve":
        from .simulator.server import TOKEN_ENV, api_token, serve

        token = api_token()
        sources = settings().sources_dir
        console.print(
            f"Serving the departments' APIs from {sources / 'http'} on http://{args.host}:{args.port}/api/v1"
        )
        console.print(f"Bearer token: {token}  (set {TOKEN_ENV} to choose it)")
        serve(sources, args.host, args.port, token, fault_rate=args.fault_rate)
        return 0
    results, sources = _simulate(
        args.date, args.days, args.scale, args.seed, args.scenario, args.source_db_url, args.feed
    )
    _print_simulation(results, sources)
    return 0


# ---------------------------------------------------------------- ingest
def _ingest_days(feeds: list[str], days: list[dt.date]) -> list:
    from .embedded import airflow_environment, embedded_sources

    airflow_environment()
    from .runner import run_days

    def show(outcome) -> None:
        batch = outcome.batch or {}
        if outcome.state == "success":
            console.print(
                f"  [green]ok[/]     {outcome.feed:34} {outcome.day}  extracted {batch.get('rows_extracted', 0):>9,}  "
                f"loaded {batch.get('rows_loaded', 0):>9,}  quarantined {batch.get('rows_quarantined', 0):>5,}  "
                f"{outcome.seconds:5.1f} s"
            )
        else:
            console.print(f"  [red]failed[/] {outcome.feed:34} {outcome.day}  {outcome.error}")

    with embedded_sources():
        return run_days(feeds, days, on_done=show)


def _print_batches(outcomes: list) -> None:
    table = Table(title="Batches")
    for header in ("feed", "date", "status", "extracted", "loaded", "quarantined", "rejected", "reconciles"):
        table.add_column(header, justify="left" if header in ("feed", "date", "status") else "right")
    for o in outcomes:
        b = o.batch or {}
        counts = [
            b.get(k) or 0 for k in ("rows_extracted", "rows_loaded", "rows_quarantined", "rows_rejected")
        ]
        ok = counts[0] == sum(counts[1:])
        table.add_row(
            o.feed,
            str(o.day),
            b.get("status", o.state),
            *(f"{n:,}" for n in counts),
            "yes" if ok else "[red]NO[/]",
        )
    console.print(table)


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.file:
        if not args.feed:
            raise ValueError("name the feed the file belongs to: edw ingest FEED --file PATH")
        from .pipeline.ingest import BatchFailed, land_file, validate_and_load

        try:
            result = validate_and_load(land_file(args.feed, Path(args.file)))
        except BatchFailed as exc:
            console.print(f"[red]batch failed:[/] {exc}")
            return 1
        extra = f"; extra columns kept in _extra: {result.extra_columns}" if result.extra_columns else ""
        console.print(
            f"[green]loaded[/] {result.batch_id}: extracted {result.rows_extracted:,}, "
            f"loaded {result.rows_loaded:,}, quarantined {result.rows_quarantined:,}{extra}"
        )
        return 0
    if args.all == bool(args.feed):
        raise ValueError("name one feed (edw ingest FEED --date D) or use --all")
    feeds = [f.name for f in catalog.all_feeds()] if args.all else [catalog.get_feed(args.feed).name]
    from .simulator.run import days_from

    outcomes = _ingest_days(feeds, days_from(args.date, args.days))
    _print_batches(outcomes)
    return 1 if any(o.state != "success" for o in outcomes) else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Re-run the ingest DAGs for every day of a range (each day a batch of its own), then build."""
    if args.to_date < args.from_date:
        raise ValueError(f"--to {args.to_date} is before --from {args.from_date}")
    days = [args.from_date + dt.timedelta(days=k) for k in range((args.to_date - args.from_date).days + 1)]
    feeds = (
        [catalog.get_feed(name).name for name in args.feed]
        if args.feed
        else [f.name for f in catalog.all_feeds()]
    )
    console.rule(f"edw backfill: {len(feeds)} feed(s) x {len(days)} day(s), {days[0]} .. {days[-1]}")
    outcomes = _ingest_days(feeds, days)
    _print_batches(outcomes)
    built = _build() if not args.no_build else True
    return 0 if built and all(o.state == "success" for o in outcomes) else 1


# ---------------------------------------------------------------- quarantine and expectations
def cmd_quarantine(args: argparse.Namespace) -> int:
    from .pipeline import quarantine

    if args.action == "list":
        rows = quarantine.summary(args.feed)
        table = Table(title="Quarantined rows by feed and rule")
        for header in ("feed", "rule", "batches", "rows"):
            table.add_column(header, justify="right" if header in ("batches", "rows") else "left")
        for row in rows:
            table.add_row(row["feed"], row["rule"], str(row["batches"]), f"{row['rows']:,}")
        console.print(table if rows else "No quarantined rows.")
        return 0
    if not args.feed:
        raise ValueError("name the feed to replay: edw quarantine replay FEED")
    results = quarantine.replay(args.feed)
    for r in results:
        console.print(
            f"  {r.batch_id}: {r.status}; loaded {r.rows_loaded:,}, still quarantined {r.rows_quarantined:,}"
        )
    console.print(f"Replayed {len(results)} batch(es) of {args.feed} from the raw lake.")
    return 0


def cmd_expectations(args: argparse.Namespace) -> int:
    from .pipeline import suites

    for feed in catalog.all_feeds():
        suite = suites.load_suite(feed)
        if args.write:
            suites.write_suite(feed)
        generated, written = len(suite["generated_from_catalog"]), len(suite["rules"])
        console.print(f"{feed.name:34} {generated:3} generated  {written:2} hand-written")
    if args.write:
        console.print(f"wrote {len(catalog.all_feeds())} suites to {suites.expectations_dir()}")
    return 0


# ---------------------------------------------------------------- build and evaluate
def _build() -> bool:
    from .transform import run_dbt

    with console.status("dbt build (seeds, staging, intermediate, marts and their tests)"):
        started = time.perf_counter()
        run = run_dbt(["build"])
    failed = [r for r in run.results if r["status"] not in ("success", "pass", "warn", "no-op")]
    kinds = {}
    for r in run.results:
        kinds[r["node"].split(".")[0]] = kinds.get(r["node"].split(".")[0], 0) + 1
    summary = ", ".join(f"{n} {k}s" for k, n in sorted(kinds.items()))
    colour = "green" if run.success else "red"
    console.print(
        f"[{colour}]dbt build {'passed' if run.success else 'FAILED'}[/] in {time.perf_counter() - started:.1f} s: {summary}"
    )
    for r in failed:
        console.print(f"  [red]{r['status']}[/] {r['node']}: {r['message']}")
    if run.error:
        console.print(f"  [red]{run.error}[/]")
    return run.success


def cmd_build(args: argparse.Namespace) -> int:
    return 0 if _build() else 1


def _docs_sites() -> bool:
    """Write the auditors' report sites and the index linking them; True when every site was written."""
    from .reports.data_docs import build_data_docs
    from .reports.dbt_docs import build_dbt_docs
    from .reports.site_index import write_site_index

    ok = True
    steps = [
        ("Data Docs (validation reports)", "rendering the Great Expectations Data Docs", build_data_docs),
        ("dbt docs", "dbt docs generate --static against the warehouse", build_dbt_docs),
    ]
    for label, doing, build in steps:
        try:
            with console.status(doing):
                index = build()
        except (RuntimeError, OSError) as exc:
            ok = False
            console.print(f"[red]{label} not written:[/] {exc}")
        else:
            console.print(f"[green]{label}[/] {index}")
    console.print(f"[green]reports index[/] {write_site_index()}  (open it in a browser; no server needed)")
    return ok


def _docs() -> Path:
    """The report sites (see `_docs_sites`); returns the validation reports' index page."""
    _docs_sites()
    return settings().data_dir / "docs" / "validation" / "index.html"


def cmd_docs(args: argparse.Namespace) -> int:
    return 0 if _docs_sites() else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_table, print_table

    rows = evaluate_table(settings().warehouse_url, settings().sources_dir / "truth", None)
    print_table(rows, console)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import latest_path, run_bench

    console.rule(f"edw bench: scale {args.scale}, stages {', '.join(args.stage)}")
    figures = run_bench(args.postgres_url, scale=args.scale, day=args.date, stages=tuple(args.stage))
    table = Table(title="Benchmark (baselines measured in the same run)")
    for header in ("figure", "value", "unit", "target", "met", "detail"):
        table.add_column(header, justify="right" if header == "value" else "left")
    for f in figures:
        met = "" if f.met is None else ("[green]yes[/]" if f.met else "[red]no[/]")
        table.add_row(f.name, f"{f.value:,.2f}", f.unit, f.target, met, f.detail)
    console.print(table)
    console.print(f"written to {latest_path()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .simulator.run import days_from

    started = time.perf_counter()
    console.rule(f"edw run: {args.days} day(s) from {args.date}, scale {args.scale}")
    results, outcomes = [], []
    for day in days_from(args.date, args.days):
        # day by day, as the departments' systems would have been read: a source database holds only
        # its current state, so a later day's snapshot must not be there when an earlier day is read
        console.rule(f"{day}: simulate the sources, then run one ingest DAG per feed for real")
        day_results, sources = _simulate(day, 1, args.scale, args.seed, None, None, None)
        results += day_results
        outcomes += _ingest_days([f.name for f in catalog.all_feeds()], [day])
    _print_simulation(results, sources)
    _print_batches(outcomes)
    console.rule("warehouse__build: dbt")
    built = _build()
    docs = _docs()
    data = settings().data_dir
    lines = [
        f"[bold green]Done[/] in {time.perf_counter() - started:.1f} s. Outputs under {data}:",
        f"  sources (simulated)  {sources}",
        f"  raw lake (Parquet)   {settings().lake_dir / 'raw'}",
        f"  warehouse            {settings().warehouse_url}  (raw, quarantine, audit, staging, marts)",
        f"  Airflow (SQLite)     {data / 'airflow'}",
        f"  validation reports   {docs}",
    ]
    console.print("\n".join(lines))
    failed = [o.feed for o in outcomes if o.state != "success"]
    if failed:
        console.print(
            f"[yellow]{len(failed)} batch(es) failed as a whole[/] (audit.batches.error): {', '.join(failed)}"
        )
    return 0 if built else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edw", description="Emergency-management data platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("catalog", help="the feeds, as a table or JSON")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
    p.add_argument(
        "--seeds",
        metavar="DIR",
        help="write the reference lists (towns, departments, event types) as dbt seeds",
    )
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser(
        "simulate", help="generate the sources' data for some days, or serve it (`edw simulate serve`)"
    )
    p.add_argument("action", nargs="?", choices=["serve"], help="serve the simulated APIs over HTTP")
    p.add_argument(
        "--date", type=_date, default=default_date(), help="first day (default: yesterday in Asia/Shanghai)"
    )
    p.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    p.add_argument(
        "--scale", type=_scale, default=1.0, help="share of full volume (1 = 1,378,080 power readings a day)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--scenario", default=None, help="a scenario TOML file (default: the built-in one)")
    p.add_argument("--feed", action="append", help="only this feed (repeatable)")
    p.add_argument("--source-db-url", default=None, help="SQLAlchemy URL of the simulated source database")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--fault-rate", type=float, default=None, help="share of first requests answered 429/503")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("ingest", help="run ingest DAGs for real for a day, or load a department's file")
    p.add_argument("feed", nargs="?", help="the feed (see `edw catalog`)")
    p.add_argument("--all", action="store_true", help="every feed of the catalog")
    p.add_argument(
        "--date",
        type=_date,
        default=default_date(),
        help="the local day (default: yesterday in Asia/Shanghai)",
    )
    p.add_argument("--days", type=int, default=1, help="number of days from --date")
    p.add_argument(
        "--file", help="a department's exported file (csv, xlsx, parquet) to send through the same path"
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("backfill", help="re-run the ingest DAGs for a date range, then build")
    p.add_argument("--from", dest="from_date", type=_date, required=True)
    p.add_argument("--to", dest="to_date", type=_date, required=True)
    p.add_argument("--feed", action="append", help="only this feed (repeatable)")
    p.add_argument("--no-build", action="store_true", help="ingest only")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("quarantine", help="inspect quarantined rows, or re-validate them after a fix")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("feed", nargs="?")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser(
        "expectations", help="the feeds' expectation suites (--write regenerates their catalog part)"
    )
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_expectations)

    p = sub.add_parser("build", help="the dbt build (what the warehouse__build DAG runs)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "docs", help="write the auditors' reports: Data Docs, dbt docs and an index (data/docs/index.html)"
    )
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("evaluate", help="anomaly detection quality against the simulator's ground truth")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "bench", help="the benchmark: every stage against same-run baselines (what `make bench` calls)"
    )
    p.add_argument("--scale", type=_scale, default=1.0)
    p.add_argument("--date", type=_date, default=dt.date(2026, 11, 27))
    p.add_argument(
        "--stage",
        action="append",
        choices=["load", "validation", "city_day"],
        help="only these stages (repeatable)",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("EDW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a Postgres where the benchmark may create and drop a database",
    )
    p.set_defaults(func=cmd_bench, stage=None)

    p = sub.add_parser("run", help="the whole pipeline on the embedded default (what `make run` calls)")
    p.add_argument("--date", type=_date, default=default_date())
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--scale", type=_scale, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "func", None) is cmd_bench and not args.stage:
        args.stage = ["load", "validation", "city_day"]
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
