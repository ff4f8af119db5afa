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
from .config import claim_data_directory, default_date, settings

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


def _days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, at least 1, got {text!r}")
    return int(text)


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
    numbers = ("rows/day", "max age (days)")  # max age: how old a record's event time or update may be
    for header in ("department", "feed", "connector", "schedule", *numbers):
        table.add_column(header, justify="right" if header in numbers else "left")
    for feed in feeds:
        dept = catalog.department(feed.department)
        table.add_row(
            f"{dept.name_zh} ({dept.code})",
            feed.name,
            feed.connector_kind,
            feed.schedule,
            f"{feed.rows_per_day:,}",
            f"{feed.max_age_days:,}",
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
def _ingest_days(feeds: list[str], days: list[dt.date], quiet: bool = False) -> list:
    """Run the ingest DAGs of ``feeds`` for ``days``, a line per batch; ``quiet``: a line per batch that
    failed or came empty, and one for the day (`edw run`). A data directory that belongs to another warehouse
    stops it before any DAG runs: every batch would fail the same way (and tell its feed's owner so), and the
    warehouse named must not be created beside the other's files."""
    from .airflow_env import airflow_environment
    from .embedded import embedded_sources

    claim_data_directory()
    airflow_environment()
    from .pipeline.suites import expected_daily
    from .runner import run_days

    def show(outcome) -> None:
        batch = outcome.batch or {}
        if outcome.state == "success":
            # a feed that sends rows every day and sent none is news even where its volume is not judged yet
            empty = not batch.get("rows_extracted") and expected_daily(catalog.get_feed(outcome.feed))
            if quiet and not empty:
                return
            label = "[yellow]empty[/] " if empty else "[green]ok[/]    "
            console.print(
                f"  {label} {outcome.feed:34} {outcome.day}  extracted {batch.get('rows_extracted', 0):>9,}  "
                f"loaded {batch.get('rows_loaded', 0):>9,}  quarantined {batch.get('rows_quarantined', 0):>5,}  "
                f"{outcome.seconds:5.1f} s"
            )
        else:
            console.print(f"  [red]failed[/] {outcome.feed:34} {outcome.day}  {outcome.error}")

    with embedded_sources():
        outcomes = run_days(feeds, days, on_done=show)
    if quiet:
        for day in days:
            _print_day_of_batches(day, [o for o in outcomes if o.day == day])
    return outcomes


def _print_day_of_batches(day: dt.date, outcomes: list) -> None:
    batches = [o.batch or {} for o in outcomes]
    loaded = sum(o.state == "success" for o in outcomes)
    counts = {k: sum(b.get(k) or 0 for b in batches) for k in COUNTS}
    failed = len(outcomes) - loaded
    console.print(
        f"{day}: {len(outcomes)} ingest DAGs, [green]{loaded} loaded[/]"
        + (f", [red]{failed} failed[/]" if failed else "")
        + f": {counts['rows_extracted']:,} rows extracted, {counts['rows_loaded']:,} loaded, "
        f"{counts['rows_quarantined']:,} held in quarantine, in {sum(o.seconds for o in outcomes):.0f} s of "
        "task time (per feed: the run summary below)"
    )


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


def _print_file_batch(result, landed) -> None:
    """What a department's file became: its days, its counts, and per failed rule what was held."""
    extra = f"; extra columns kept in _extra: {result.extra_columns}" if result.extra_columns else ""
    console.print(
        f"[green]loaded[/] {result.batch_id}, covering {landed.covers}: extracted {result.rows_extracted:,}, "
        f"loaded {result.rows_loaded:,}, quarantined {result.rows_quarantined:,}{extra}"
    )
    console.print(f"  landed as {landed.path}")
    failed = [o for o in result.outcomes if not o.success and not o.skipped]
    if not failed:
        console.print("  every rule passed")
        return
    table = Table(title=f"Rules that failed on {result.batch_id}")
    for header in ("rule", "severity", "rows", "what happened", "what the rule checks"):
        table.add_column(header, justify="right" if header == "rows" else "left")
    for o in sorted(failed, key=lambda o: (-o.unexpected_count, o.name)):
        happened = "quarantined" if o.severity == "row" else "flagged, loaded"
        table.add_row(o.name, o.severity, f"{o.unexpected_count:,}", happened, o.description)
    console.print(table)
    console.print(
        "  a row rule's rows are held in quarantine (the rest loaded): `edw quarantine list`, and after a "
        f"fix `edw quarantine replay {result.feed}`"
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    dated = args.from_date is not None or args.to_date is not None
    if dated and not args.file:
        raise ValueError("--from/--to name the days of a file (edw ingest FEED --file PATH --from D --to D)")
    if args.file:
        if not args.feed:
            raise ValueError("name the feed the file belongs to: edw ingest FEED --file PATH")
        from .pipeline.ingest import BatchFailed, land_file, validate_and_load

        try:
            landed = land_file(args.feed, Path(args.file), args.from_date, args.to_date)
            result = validate_and_load(landed)
        except BatchFailed as exc:
            console.print(f"[red]batch failed:[/] {exc}")
            return 1
        _print_file_batch(result, landed)
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
    from .pipeline.pipeline_settings import build_passes

    console.rule(f"edw backfill: {len(feeds)} feed(s) x {len(days)} day(s), {days[0]} .. {days[-1]}")
    # the marts are built after every [backfill] days_per_build days loaded (pipeline.toml): a build takes
    # in the days loaded since the last one, and its memory grows with them
    passes = [days] if args.no_build else build_passes(days)
    outcomes = []
    for number, loaded in enumerate(passes, 1):
        if len(passes) > 1:
            console.print(
                f"pass {number} of {len(passes)}: {loaded[0]} .. {loaded[-1]}, then the build "
                "([backfill] days_per_build in the pipeline settings)"
            )
        outcomes += _ingest_days(feeds, loaded)
        if not args.no_build and not _build(via=f"edw backfill (pass {number} of {len(passes)})"):
            _print_batches(outcomes)
            rest = days[days.index(loaded[-1]) + 1 :]
            left = (
                f" The days after it were not loaded: `edw backfill --from {rest[0]} --to {rest[-1]}` loads "
                "them once the build passes."
                if rest
                else ""
            )
            console.print(
                f"[red]The build after {loaded[0]} .. {loaded[-1]} failed[/]: what was loaded stays loaded, and "
                f"the next build takes it in.{left}"
            )
            return 1
    _print_batches(outcomes)
    return 0 if all(o.state == "success" for o in outcomes) else 1


# ---------------------------------------------------------------- retention
def cmd_retention(args: argparse.Namespace) -> int:
    """Detach the raw partitions of batches older than the retention (Postgres); the lake keeps them all."""
    from .config import LOCAL_TZ
    from .pipeline.retention import RAW_DETACHED, RETENTION_ENV, detach_expired, retention_days
    from .warehouse import connect

    if args.migrate:
        return _partition_existing_tables()
    days = args.days if args.days is not None else retention_days()
    if days is None:
        console.print(
            f"{RETENTION_ENV} is unset: raw keeps every batch, nothing to detach (set it, or pass --days N)."
        )
        return 0
    url = settings().warehouse_url
    if url.startswith("duckdb:"):
        console.print(
            "The embedded DuckDB warehouse has no partitions: nothing to detach (the raw lake keeps every "
            "batch either way)."
        )
        return 0
    warehouse = connect(url)
    try:
        result = detach_expired(warehouse, days, dry_run=args.dry_run)
    finally:
        warehouse.close()
    cutoff = f"{result.cutoff.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} local time"
    for feed in result.unpartitioned:
        console.print(
            f"[yellow]raw.{feed} was created unpartitioned (before partitions): nothing of it is detached; "
            "`edw retention --migrate` partitions it, once.[/]"
        )
    if not result.expired:
        console.print(
            f"No batch of a partitioned feed ended before {cutoff} ({days} days ago): nothing to detach."
        )
        return 0
    verb = "would detach" if result.dry_run else "detached"
    table = Table(title=f"Raw partitions of batches that ended before {cutoff} ({days} days ago): {verb}")
    for header in ("batch", "interval ended", "rows loaded", "partition"):
        table.add_column(
            header, justify="right" if header == "rows loaded" else "left", no_wrap=header != "batch"
        )
    for e in result.expired:
        table.add_row(
            e.batch_id,
            f"{e.interval_end.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
            f"{e.rows_loaded:,}",
            e.partition,
        )
    console.print(table)
    rows = sum(e.rows_loaded for e in result.expired)
    if result.dry_run:
        console.print(
            f"Dry run: {len(result.expired)} partition(s), {rows:,} rows, would move to schema {RAW_DETACHED}; "
            "nothing was changed."
        )
    else:
        console.print(
            f"Detached {len(result.expired)} partition(s), {rows:,} rows, into schema {RAW_DETACHED}: raw no longer "
            f"reads them, nothing was dropped (drop them there when no longer wanted); the raw lake keeps "
            "every batch."
        )
    return 0


def _partition_existing_tables() -> int:
    from .pipeline.retention import RAW_DETACHED, partition_existing_tables
    from .warehouse import connect

    url = settings().warehouse_url
    if url.startswith("duckdb:"):
        console.print("The embedded DuckDB warehouse has no partitions: nothing to migrate.")
        return 0
    warehouse = connect(url)
    try:
        with console.status("partitioning the raw tables created unpartitioned (one transaction each)"):
            migrated = partition_existing_tables(warehouse)
    finally:
        warehouse.close()
    if not migrated:
        console.print("Every raw table of a partitioned feed is partitioned already: nothing to migrate.")
        return 0
    for m in migrated:
        console.print(
            f"[green]raw.{m.feed}[/] is partitioned by batch: {m.partitions:,} partition(s); the table as it "
            f"was is kept as {m.kept}."
        )
    console.print(
        "Run `edw build` now: dbt's staging views still read the old tables until the build recreates them. "
        f"Then drop the old tables in {RAW_DETACHED} when no longer wanted."
    )
    return 0


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
    refused = [r for r in results if r.status == "refused"]
    for r in results:
        if r.status == "refused":
            console.print(f"  [red]{r.batch_id}: refused[/]: {r.error}")
            continue
        console.print(
            f"  {r.batch_id}: {r.status}; loaded {r.rows_loaded:,}, still quarantined {r.rows_quarantined:,}"
        )
    console.print(
        f"Replayed {len(results) - len(refused)} batch(es) of {args.feed} from the raw lake"
        + (f"; refused {len(refused)} whose lake file is not the one loaded." if refused else ".")
    )
    return 1 if refused else 0


def cmd_expectations(args: argparse.Namespace) -> int:
    from .pipeline import suites

    wrote = 0
    for feed in catalog.all_feeds():
        suite = suites.load_suite(feed)
        on_disk = suites.suite_path(feed).exists()
        if (
            args.write and on_disk
        ):  # a feed without a file has no hand-written rules: the catalog's are its suite
            suites.write_suite(feed)
            wrote += 1
        generated, written = len(suite["generated_from_catalog"]), len(suite["rules"])
        where = "" if on_disk else "  (no suite file: the catalog's rules only)"
        console.print(f"{feed.name:34} {generated:3} generated  {written:2} hand-written{where}")
    if args.write:
        console.print(
            f"wrote {wrote} suites to {suites.expectations_dir()} (a new feed's: create "
            '<feed>.json with {"feed": ..., "rules": [...]}, then run this again)'
        )
    return 0


# ---------------------------------------------------------------- build and evaluate
def _build(unit_tests: bool = False, full_refresh: bool = False, via: str = "edw build") -> bool:
    from .pipeline.builds import production_build
    from .transform import PRODUCTION_BUILD, describe_raw_tables, missing_readers, prepare_raw_tables

    # every raw table of the catalog exists before dbt reads it, even those of feeds never ingested
    for line in describe_raw_tables(prepare_raw_tables()):
        console.print(f"[yellow]{line}[/]")
    # Postgres: the build grants the readers' roles that exist, and says if one is missing
    notice = missing_readers()
    if notice:
        console.print(f"[yellow]{notice}[/]")
    what = "dbt build (seeds, staging, intermediate, marts and their tests)"
    with console.status(what) as status:
        started = time.perf_counter()
        command = ["build"] if unit_tests else list(PRODUCTION_BUILD)

        def progress(done: int, node: str) -> None:
            status.update(f"{what}: {done} done, last {node.split('.')[-1]}")

        # one progress line here; dbt's full log stays in the file named below
        run = production_build(
            via, command + (["--full-refresh"] if full_refresh else []), quiet=True, progress=progress
        )
    failed = run.failed
    kinds = {}
    for r in run.results:
        kinds[r["node"].split(".")[0]] = kinds.get(r["node"].split(".")[0], 0) + 1
    summary = ", ".join(f"{n} {k}s" for k, n in sorted(kinds.items()))
    colour = "green" if run.success else "red"
    console.print(
        f"[{colour}]dbt build {'passed' if run.success else 'FAILED'}[/] in {time.perf_counter() - started:.1f} s: "
        f"{summary} (dbt's log: {settings().data_dir / 'dbt' / 'logs' / 'dbt.log'})"
    )
    for r in failed:
        console.print(f"  [red]{r['status']}[/] {r['node']}: {r['message']}")
    if run.error:
        console.print(f"  [red]{run.error}[/]")
    messages = [r["message"] or "" for r in failed] + [run.error or ""]
    for hint in (out_of_memory_hint(messages), schema_change_hint(messages)):
        if hint:
            console.print(hint, style="yellow", markup=False)
    return run.success


def out_of_memory_hint(messages: list[str]) -> str | None:
    """What to do when the embedded warehouse ran out of memory in a build (None when it did not)."""
    if not any("Out of Memory Error" in m for m in messages):
        return None
    return (
        "The embedded DuckDB warehouse ran out of memory (EDW_DUCKDB_MEMORY_LIMIT, now "
        f"{settings().duckdb_memory_limit}): a build takes in every day loaded since the last one, and the "
        "power models' memory grows with those days. Raise EDW_DUCKDB_MEMORY_LIMIT for this build, or load "
        "long histories with `edw backfill`, which builds after every [backfill] days_per_build days "
        "(pipeline.toml). Nothing loaded is lost: the next build takes it in."
    )


def schema_change_hint(messages: list[str]) -> str | None:
    """What to do when a warehouse table has the columns of an earlier release (None when none has): the
    models whose shape changed refuse to mix the two (dbt's on_schema_change: fail)."""
    if not any("out of sync" in m for m in messages):
        return None
    return (
        "A table in the warehouse has the columns of an earlier release of this model (the model's shape "
        "changed, and rows of both shapes cannot live in one table). Run `edw build --full-refresh` once: it "
        "rebuilds every model from the raw tables. Nothing loaded is lost."
    )


def cmd_build(args: argparse.Namespace) -> int:
    return 0 if _build(unit_tests=args.unit_tests, full_refresh=args.full_refresh) else 1


def _report_pages(days: list[dt.date] | None, quiet: bool = False) -> list[Path]:
    from .reports.pages import build_report_pages

    with console.status("writing the report pages (audit, situation map, response times)"):
        pages = build_report_pages(days=days)
    for page in pages if not quiet else ():
        console.print(f"[green]report[/] {page}")
    return pages


def _site_index(quiet: bool = False) -> Path:
    from .reports.site_index import write_site_index

    index = write_site_index()
    if not quiet:
        console.print(f"[green]reports index[/] {index}  (open it in a browser; no server needed)")
    return index


def _docs(days: list[dt.date] | None = None, quiet: bool = False) -> tuple[bool, dict[str, Path]]:
    """Every report site: the report pages (audit, map, response), the GX Data Docs, the dbt docs,
    and the index linking them. Returns whether every site was written, and where each is; ``quiet``: one
    line for them all (a site not written still gets its own)."""
    from .reports.data_docs import build_data_docs
    from .reports.dbt_docs import build_dbt_docs

    written = {p.parent.name: p for p in _report_pages(days, quiet)}
    ok = True
    steps = [
        (
            "validation",
            "Data Docs (validation reports)",
            "rendering the Great Expectations Data Docs",
            build_data_docs,
        ),
        ("dbt", "dbt docs", "dbt docs generate --static against the warehouse", build_dbt_docs),
    ]
    for name, label, doing, build in steps:
        try:
            with console.status(doing):
                written[name] = build()
        except (RuntimeError, OSError) as exc:
            ok = False
            console.print(f"[red]{label} not written:[/] {exc}")
        else:
            if not quiet:
                console.print(f"[green]{label}[/] {written[name]}")
    written["index"] = _site_index(quiet)
    if quiet:
        sites = ", ".join(name for name in written if name != "index")
        console.print(
            f"[green]reports written[/] ({sites}): open {written['index']} in a browser (no server needed)"
        )
    return ok, written


def cmd_docs(args: argparse.Namespace) -> int:
    return 0 if _docs()[0] else 1


def _print_held_by_rule(holds: list, shown: int) -> None:
    """The defects caught, by rule: the ``shown`` rules that held most rows, the others summed (run_summary.json
    and the audit page hold them all)."""
    if not holds:
        return
    table = Table(title="Rows held in quarantine by rule: defects caught in what the sources sent")
    for header in ("rule", "feeds", "batches", "rows held", "what the rule checks"):
        table.add_column(header, justify="right" if header in ("batches", "rows held") else "left")
    for hold in holds[:shown]:
        feeds = ", ".join(hold.feeds[:3]) + (f" +{len(hold.feeds) - 3}" if len(hold.feeds) > 3 else "")
        table.add_row(hold.rule, feeds, str(hold.batches), f"{hold.rows:,}", hold.description)
    rest = holds[shown:]
    if rest:
        table.add_row(
            f"{len(rest)} other rules",
            "",
            str(sum(h.batches for h in rest)),
            f"{sum(h.rows for h in rest):,}",
            "in run_summary.json (held_by_rule) and on the audit page",
        )
    console.print(table)


COUNTS = ("rows_extracted", "rows_loaded", "rows_quarantined", "rows_rejected")


def _feeds_listed(feeds: list, shown: int) -> tuple[list, list]:
    """The feeds a printed summary lists (every one that failed a batch, rejected rows or does not
    reconcile, then those that held most rows, up to ``shown``) and the others, in the catalog's order."""

    def needs_a_person(f) -> bool:
        return bool(f.failed_batches or f.rows_rejected or not f.reconciles)

    ranked = sorted(feeds, key=lambda f: (not needs_a_person(f), -f.rows_quarantined))
    chosen = {f.feed for f in ranked[: max(shown, sum(map(needs_a_person, feeds)))]}
    return [f for f in feeds if f.feed in chosen], [f for f in feeds if f.feed not in chosen]


def _print_run_summary(summary) -> None:
    """The run summary (emergency_dw.reports.summary.RunSummary) as tables."""
    from .reports.charts import duration
    from .reports.report_settings import load_report_settings

    report_settings = load_report_settings()
    colours, printed = report_settings.levels, report_settings.summary
    days = ", ".join(summary.days) or "no batches"
    listed, others = _feeds_listed(summary.feeds, printed["printed_feeds"])
    more = f"; {len(others)} more in run_summary.json" if others else ""
    table = Table(title=f"Rows per feed ({days}{more})")
    for header in ("feed", "batches", "extracted", "loaded", "quarantined", "rejected", "reconciles"):
        table.add_column(header, justify="left" if header == "feed" else "right")
    for f in listed:
        failed = f" ([red]{f.failed_batches} failed[/])" if f.failed_batches else ""
        table.add_row(
            f.feed,
            f"{f.batches}{failed}",
            f"{f.rows_extracted:,}",
            f"{f.rows_loaded:,}",
            f"{f.rows_quarantined:,}",
            f"{f.rows_rejected:,}",
            "yes" if f.reconciles else "[red]NO[/]",
        )
    if others:
        table.add_row(
            f"{len(others)} other feeds",
            str(sum(f.batches for f in others)),
            *(f"{sum(getattr(f, k) for f in others):,}" for k in COUNTS),
            "yes",
        )
    t = summary.totals
    table.add_section()
    table.add_row(
        f"[bold]{len(summary.feeds)} feeds[/]",
        f"{t['batches']}",
        f"[bold]{t['rows_extracted']:,}[/]",
        f"[bold]{t['rows_loaded']:,}[/]",
        f"[bold]{t['rows_quarantined']:,}[/]",
        f"[bold]{t['rows_rejected']:,}[/]",
        "yes" if all(f.reconciles for f in summary.feeds) else "[red]NO[/]",
    )
    console.print(table)
    if summary.failed_reruns:
        table = Table(title="Failed reruns: the good load stayed (audit.batch_attempts)")
        for header in ("feed", "day", "attempted (UTC)", "failed rule", "good load kept"):
            table.add_column(header)
        for r in summary.failed_reruns:
            table.add_row(
                r.feed,
                str(r.day or ""),
                f"{r.attempted_at:%Y-%m-%d %H:%M}" if r.attempted_at else "",
                f"[red]{r.failed_rule or ''}[/]",
                f"{r.good_rows_loaded:,} rows, {r.good_loaded_at:%Y-%m-%d %H:%M}" if r.good_loaded_at else "",
            )
        console.print(table)
    if summary.volume_flags:
        table = Table(title="Empty or short batches of feeds expected daily")
        for header in ("feed", "day", "status", "extracted", "problem"):
            table.add_column(header, justify="right" if header == "extracted" else "left")
        for flag in summary.volume_flags:
            colour = "red" if flag.status == "failed" else "yellow"
            table.add_row(
                flag.feed,
                flag.day or "",
                f"[{colour}]{flag.status}[/]",
                f"{flag.rows_extracted:,}",
                flag.problem,
            )
        console.print(table)
    v = summary.validation
    if v is not None and v.pass_rate is not None:
        severities = ", ".join(f"{name} {e['passed']}/{e['evaluated']}" for name, e in v.by_severity.items())
        console.print(
            f"[bold]Validation[/]: {v.expectations_passed:,} of {v.expectations_evaluated:,} expectation runs "
            f"passed ([bold]{v.pass_rate:.1%}[/]; {severities}; {v.expectations_skipped} not run)"
        )
        _print_held_by_rule(summary.held_by_rule, printed["printed_rules"])
        console.print("\n".join(summary.validation_explained))
    if summary.top_enterprises:
        counts = ", ".join(
            f"{name} {n:,}"
            + (f" ({summary.red_by_major_hazard:,} by an open major hazard)" if name == "red" and n else "")
            for name, n in summary.risk_level_counts.items()
        )
        top = summary.top_enterprises[: printed["printed_enterprises"]]
        table = Table(title=f"Top {len(top)} enterprises by risk on {summary.risk_date} ({counts})")
        for header in ("#", "enterprise", "name", "town", "level", "risk index", "reasons"):
            table.add_column(header, justify="right" if header in ("#", "risk index") else "left")
        for e in top:
            colour = colours.get(e.risk_level, "white")
            table.add_row(
                str(e.rank),
                e.enterprise_id,
                e.enterprise_name or "",
                e.town_name or "",
                f"[bold {colour}]{e.risk_level}[/]",
                f"{e.risk_index:.1f}",
                e.reasons,
            )
        console.print(table)
    if summary.response:
        received = summary.response_days
        span = (
            f"{received[0]} to {received[-1]}" if len(received) > 1 else (received[0] if received else "none")
        )
        table = Table(title=f"Response times per channel against target (calls received {span})")
        for header in (
            "channel",
            "incidents",
            "interval",
            "measured",
            "p50",
            "p90",
            "target",
            "within target",
        ):
            table.add_column(header, justify="left" if header in ("channel", "interval") else "right")
        for ch in summary.response:
            for k, f in enumerate(ch.intervals):
                share = "–" if f.within_target_share is None else f"{f.within_target_share:.0%}"
                p90_ok = (
                    f.p90_seconds is not None
                    and f.target_seconds is not None
                    and f.p90_seconds <= f.target_seconds
                )
                p90 = "–" if f.p90_seconds is None else duration(f.p90_seconds)
                table.add_row(
                    ch.channel if k == 0 else "",
                    f"{ch.incidents:,}" if k == 0 else "",
                    f.interval.replace("_", " "),
                    f"{f.measured:,}",
                    "–" if f.p50_seconds is None else duration(f.p50_seconds),
                    p90 if p90_ok or f.p90_seconds is None else f"[red]{p90}[/]",
                    "–" if f.target_seconds is None else duration(f.target_seconds),
                    share,
                )
            table.add_section()
        console.print(table)
    for problem in summary.problems:
        console.print(f"[yellow]not in the summary:[/] {problem}")


def cmd_report(args: argparse.Namespace) -> int:
    """The report pages (audit, situation map, response times) and the summary of the day(s) in the warehouse."""
    from .reports.summary import collect_run_summary
    from .simulator.run import days_from

    days = days_from(args.date, args.days) if args.date else None
    pages = _report_pages(days)
    _site_index()
    summary = collect_run_summary(settings().warehouse_url, days, {p.parent.name: str(p) for p in pages})
    _print_run_summary(summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """The warnings against the simulator's truth (or, with --real-curves, against events put on real
    load curves run through the whole pipeline); status 1 with a line per target missed."""
    from .evaluation import (
        RealCurveOptions,
        evaluate_real_curves,
        evaluate_warehouse,
        events_table,
        missed_targets,
        print_evaluation,
    )

    defaults = {"meters": 16, "weeks": 6, "judged_weeks": 2, "events_per_meter_week": 1.0}
    real_only = [k for k in (*defaults, "column", "seed", "keep") if getattr(args, k) is not None]
    if args.real_curves is None:
        if real_only:
            flags = ", ".join("--" + k.replace("_", "-") for k in real_only)
            raise ValueError(f"{flags}: only with --real-curves CSV (a file of real 15-minute load curves)")
        evaluation = evaluate_warehouse(settings().warehouse_url, settings().sources_dir / "truth")
    else:
        numbers = {
            k: default if getattr(args, k) is None else getattr(args, k) for k, default in defaults.items()
        }
        options = RealCurveOptions(
            Path(args.real_curves),
            args.column,
            seed=args.seed,
            keep=Path(args.keep) if args.keep else None,
            **numbers,
        )
        evaluation = evaluate_real_curves(options, console)
        events_table(evaluation, console)
    print_evaluation(evaluation, console)
    missed = missed_targets(evaluation, args.min_precision, args.min_recall, args.max_false_per_meter_week)
    for line in missed:
        console.print(f"[red]target missed:[/] {line}")
    return 1 if missed else 0


def _compact(value: float) -> str:
    """A figure's value in a narrow cell: whole above 1,000, else two decimals."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from edw_bench import (
        BENCH_DATABASE,
        LABELS,
        STAGES,
        latest_path,
        modes_side_by_side,
        plan_run,
        run_bench,
        scheduler_modes,
        server_of,
        side_by_side,
    )
    from emergency_dw.catalog import get_feed

    for feed in args.feed or ():
        get_feed(feed)  # a name the catalog lacks ends the command here, before any stage runs
    plan = plan_run(
        tuple(args.stage or STAGES), bool(args.stage), tuple(args.warehouse or ()) or None, args.postgres_url
    )
    on = f", warehouses {', '.join(plan.warehouses)}" if plan.warehouses else ""
    console.rule(f"edw bench: scale {args.scale}, stages {', '.join(plan.stages)}{on}")
    for note in plan.notes:
        console.print(f"  [yellow]bench[/] {escape(note)}")
    if "postgres" in plan.warehouses:
        database = args.postgres_database or BENCH_DATABASE
        console.print(
            f"  [green]bench[/] postgres: the history, city-day and bi stages in database {database} on "
            f"{server_of(args.postgres_url)}, made anew"
            + (" and kept afterwards (--keep-postgres)" if args.keep_postgres else " and dropped afterwards")
        )
    figures = run_bench(
        args.postgres_url,
        scale=args.scale,
        day=args.date,
        stages=plan.stages,
        days=args.days,
        progress=lambda line: console.print(f"  [green]bench[/] {escape(line)}"),
        backfill=args.backfill_days,
        warehouses=plan.warehouses,
        keep_postgres=args.keep_postgres,
        postgres_database=args.postgres_database or BENCH_DATABASE,
        build_modes=tuple(dict.fromkeys(args.build_mode)) if args.build_mode else None,
        feeds=tuple(args.feed) if args.feed else None,
    )

    def met_cell(met: bool | None, failed: tuple[str, ...] | list[str] = ()) -> str:
        if met is None:
            return ""
        return "[green]yes[/]" if met else "[red]no[/]" + (f" ({', '.join(failed)})" if failed else "")

    pairs, others = side_by_side(figures)
    if pairs:
        table = Table(title="The same stages on both warehouses (same run, same simulated days)")
        for header in ("figure", LABELS["duckdb"], LABELS["postgres"], "Postgres/DuckDB", "target", "met"):
            table.add_column(
                header,
                justify="left" if header in ("figure", "target", "met") else "right",
                no_wrap=header != "target",
            )
        for row in pairs:
            table.add_row(
                row.name,
                f"{_compact(row.duckdb.value)} {row.duckdb.unit}",
                f"{_compact(row.postgres.value)} {row.postgres.unit}",
                "" if row.ratio is None else f"{row.ratio:,.2f}x",
                row.target,
                met_cell(row.met, row.failed),
            )
        console.print(table)
    modes = scheduler_modes(figures)
    if modes:
        table = Table(
            title="Airflow's scheduler runs the day on Postgres, per build mode of warehouse__build"
        )
        for header in ("figure", *modes, "target"):
            table.add_column(header, justify="left" if header in ("figure", "target") else "right")
        for what, cells, target in modes_side_by_side(figures, modes):
            shown = [
                ""
                if f is None
                else f"{_count(f.value) if f.unit in ('runs', 'marts') else _compact(f.value)} {f.unit}"
                + {True: " ✓", False: " ✗", None: ""}[f.met]
                for f in cells
            ]
            table.add_row(escape(what), *shown, escape(target))
        console.print(table)
    table = Table(title="Benchmark (baselines measured in the same run)")
    for header in ("figure", "value", "unit", "target", "met", "detail"):
        table.add_column(header, justify="right" if header == "value" else "left")
    for f in others:
        # a run on Postgres alone: its figures say so (DuckDB's print as they always have)
        name = (
            f"{f.name} (Postgres)"
            if plan.warehouses == ("postgres",) and f.warehouse == "postgres"
            else f.name
        )
        table.add_row(
            escape(name), f"{f.value:,.2f}", f.unit, escape(f.target), met_cell(f.met), escape(f.detail)
        )
    console.print(table)
    console.print(f"written to {latest_path()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .reports.summary import RUN_SUMMARY, collect_run_summary, write_summary_json
    from .simulator.run import days_from

    started = time.perf_counter()
    console.rule(f"edw run: {args.days} day(s) from {args.date}, scale {args.scale}")
    outcomes = []
    run_days = days_from(args.date, args.days)
    for day in run_days:
        # day by day, as the departments' systems would have been read: a source database holds only
        # its current state, so a later day's snapshot must not be there when an earlier day is read
        console.rule(f"{day}: simulate the sources, then run one ingest DAG per feed for real")
        _, sources = _simulate(day, 1, args.scale, args.seed, None, None, None)
        outcomes += _ingest_days([f.name for f in catalog.all_feeds()], [day], quiet=True)
    console.rule("warehouse__build: dbt")
    built = _build(via="edw run")
    docs_ok, sites = _docs(run_days, quiet=True)
    data = settings().data_dir
    outputs = {
        "sources (simulated)": str(sources),
        "raw lake (Parquet)": str(settings().lake_dir / "raw"),
        "warehouse": settings().warehouse_url,
        "Airflow (SQLite)": str(data / "airflow"),
        "reports index": str(sites["index"]),
        "audit report": str(sites["audit"]),
        "situation map": str(sites["map"]),
        "response times": str(sites["response"]),
        "validation Data Docs": str(sites.get("validation", "not written (see above)")),
        "dbt docs": str(sites.get("dbt", "not written (see above)")),
        "run summary (JSON)": str(data / RUN_SUMMARY),
    }
    console.rule("run summary (read back from the warehouse)")
    summary = collect_run_summary(settings().warehouse_url, run_days, outputs)
    write_summary_json(summary, data / RUN_SUMMARY)
    _print_run_summary(summary)
    width = max(len(name) for name in outputs)
    lines = [
        f"[bold green]Done[/] in {time.perf_counter() - started:.1f} s. Where each output is (under {data}):"
    ]
    lines += [f"  {name:{width}}  {path}" for name, path in outputs.items()]
    console.print("\n".join(lines))
    failed = [o.feed for o in outcomes if o.state != "success"]
    if failed:
        console.print(
            f"[yellow]{len(failed)} batch(es) failed as a whole[/] (audit.batches.error): {', '.join(failed)}"
        )
    return 0 if built and docs_ok else 1


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
    p.add_argument(
        "--from",
        dest="from_date",
        type=_date,
        default=None,
        help="with --file: the first local day the file covers (default: from its records' event time)",
    )
    p.add_argument(
        "--to",
        dest="to_date",
        type=_date,
        default=None,
        help="with --file: the last local day the file covers (default: --from, or the records' last day)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("backfill", help="re-run the ingest DAGs for a date range, then build")
    p.add_argument("--from", dest="from_date", type=_date, required=True)
    p.add_argument("--to", dest="to_date", type=_date, required=True)
    p.add_argument("--feed", action="append", help="only this feed (repeatable)")
    p.add_argument("--no-build", action="store_true", help="ingest only")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser(
        "retention",
        help="Postgres: detach the raw partitions of batches older than EDW_RAW_RETENTION_DAYS (to raw_detached)",
    )
    p.add_argument(
        "--days",
        type=_days,
        default=None,
        help="keep the batches whose interval ended within this many days (default: EDW_RAW_RETENTION_DAYS)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be detached; change nothing")
    p.add_argument(
        "--migrate",
        action="store_true",
        help="once: partition the raw tables of partitioned feeds that were created unpartitioned (then edw build)",
    )
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("quarantine", help="inspect quarantined rows, or re-validate them after a fix")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("feed", nargs="?")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser(
        "expectations",
        help="the feeds' expectation suites (--write regenerates the catalog part of expectations/*.json)",
    )
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_expectations)

    p = sub.add_parser("build", help="the dbt build (what the warehouse__build DAG runs)")
    p.add_argument(
        "--unit-tests",
        action="store_true",
        help="run dbt's unit tests too (they check the models' logic on fixed inputs; make test runs them)",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every incremental model from all it reads (after changing a seed's number: what was "
        "built before was judged by the old one)",
    )
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "docs", help="write the auditors' reports: Data Docs, dbt docs and an index (data/docs/index.html)"
    )
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser(
        "report",
        help="write the report pages (audit, situation map, response times) under data/docs and print the summary",
    )
    p.add_argument("--date", type=_date, default=None, help="first day of the summary (default: the latest)")
    p.add_argument("--days", type=int, default=1, help="number of days from --date")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "evaluate",
        help="the power warnings against the simulator's ground truth, or against events put on real load curves",
    )
    p.add_argument(
        "--min-precision", type=float, help="target: each rule's precision at least this (exit 1 if not)"
    )
    p.add_argument(
        "--min-recall", type=float, help="target: each rule's recall at least this (exit 1 if not)"
    )
    p.add_argument(
        "--max-false-per-meter-week",
        type=float,
        help="target: false alarms per meter-week at most this (exit 1 if not)",
    )
    p.add_argument(
        "--real-curves",
        metavar="CSV",
        help="run the whole pipeline on a file of real 15-minute load curves spliced into a small simulated city",
    )
    p.add_argument("--column", action="append", help="with --real-curves: only this load column (repeatable)")
    p.add_argument("--meters", type=int, help="with --real-curves: meters reading a real curve (default 16)")
    p.add_argument("--weeks", type=int, help="with --real-curves: weeks of curve per meter (default 6)")
    p.add_argument("--judged-weeks", type=int, help="with --real-curves: the last weeks, judged (default 2)")
    p.add_argument(
        "--events-per-meter-week",
        type=float,
        help="with --real-curves: events injected per meter and judged week (default 1)",
    )
    p.add_argument("--seed", type=int, help="with --real-curves: random seed (default: the scenario's)")
    p.add_argument("--keep", metavar="DIR", help="with --real-curves: run in this new folder and keep it")
    p.set_defaults(func=cmd_evaluate)

    # the benchmark's stages and warehouses, for --stage and --warehouse: imported here, never with this module
    from edw_bench import STAGES, WAREHOUSES

    from .pipeline.build_mode import BUILD_MODES

    p = sub.add_parser(
        "bench", help="the benchmark: every stage against same-run baselines (what `make bench` calls)"
    )
    p.add_argument("--scale", type=_scale, default=1.0)
    p.add_argument("--date", type=_date, default=dt.date(2026, 11, 27))
    p.add_argument(
        "--stage",
        action="append",
        choices=list(STAGES),
        help="only these stages (repeatable; default all)",
    )
    p.add_argument(
        "--days",
        type=int,
        default=None,
        help="daily runs in the history stage (default: bench.toml, 30); the city-day is the day after them",
    )
    p.add_argument(
        "--backfill-days",
        type=int,
        default=None,
        help="days of history loaded before the daily runs (default: bench.toml, else the power rules' lookback, 56)",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("EDW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a Postgres where the benchmark may create and drop a database",
    )
    p.add_argument(
        "--warehouse",
        action="append",
        choices=list(WAREHOUSES),
        help="run the history, city-day and bi stages on this warehouse (repeatable; default: both when "
        "--postgres-url answers, else duckdb, saying why); Postgres: a database made on that server",
    )
    p.add_argument(
        "--postgres-database",
        default=None,
        metavar="NAME",
        help="the database the Postgres stages run in, dropped first if it exists (default edw_bench_run)",
    )
    p.add_argument(
        "--keep-postgres",
        action="store_true",
        help="keep that database afterwards (default: dropped at the end)",
    )
    p.add_argument(
        "--build-mode",
        action="append",
        choices=list(BUILD_MODES),
        help="the scheduler stage: run warehouse__build this way (repeatable; default the default mode, build): "
        "build (one `dbt build` task), cosmos (a task per model), watcher (Cosmos's watcher mode)",
    )
    p.add_argument(
        "--feed",
        action="append",
        help="only these feeds (repeatable; default every feed): the history and city-day stages simulate and "
        "ingest them alone (time targets then shown, not judged), the scheduler stage releases their DAGs alone",
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
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
