"""The ``edw`` command (DESIGN section 6)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def cmd_run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    console.rule(f"edw run: {args.days} day(s) from {args.date}, scale {args.scale}")
    results, sources = _simulate(args.date, args.days, args.scale, args.seed, None, None, None)
    _print_simulation(results, sources)
    console.print(
        f"[bold green]Done[/] in {time.perf_counter() - started:.1f} s. The day's data is under {sources}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edw", description="Emergency-management data platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("catalog", help="the feeds, as a table or JSON")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
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

    p = sub.add_parser("run", help="the whole pipeline on the embedded default (what `make run` calls)")
    p.add_argument("--date", type=_date, default=default_date())
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--scale", type=_scale, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
