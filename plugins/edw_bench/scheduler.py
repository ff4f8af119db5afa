"""Stage scheduler: Airflow's scheduler runs a day for real. A fresh warehouse database on Postgres, the
sources of one simulated day, Airflow (LocalExecutor, a fresh Postgres metadata database) with job
scheduling on; the 41 ``ingest__<feed>`` DAGs are released at once, run the day on their schedule, and
``warehouse__build`` runs on their Assets. Measured from the metadata database: the wall time from the
release to the end of the last build that read every feed, the work in the tasks, the critical path,
and the scheduler's overhead; once per build mode of ``warehouse__build`` (``EDW_BUILD_MODE``).

Which day: the DAGs have ``catchup=False``, so an unpaused DAG's scheduler makes the run of the latest
local day that is over, exactly as in production when a day ends. The stage therefore simulates that
day (yesterday in Asia/Shanghai) and releases the DAGs by unpausing them all at one instant (what
``airflow dags unpause`` writes, in one statement): nothing is triggered by hand, and the runs are the
scheduler's own (``run_type = scheduled``)."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .figures import Figure, targets

LOCAL_ZONE = "Asia/Shanghai"
BUILD_DAG = "warehouse__build"
# marts a day's data must fill (the response marts read the 110/119/120 calls and the dispatch records)
CHECKED_MARTS = ("fct_incident_response", "agg_response_times_daily")
# Cosmos watcher mode: a task per model that waits (deferred) for the producer's `dbt build`; its time
# is waiting, not work
WATCHER_CONSUMER = "WatcherOperator"
WATCHER_PRODUCER = "DbtProducerWatcherOperator"
# warehouse__build's first task: a run started on asset events waits there (rescheduled, holding no slot)
# for the day's ingest runs; its time is waiting, not work
WAIT_TASK = "wait_for_ingest"


def build_modes() -> tuple[str, ...]:
    """The build modes of ``warehouse__build`` this installation has (Cosmos's watcher mode needs
    Cosmos 1.11 or later)."""
    from emergency_dw.pipeline.build_mode import BUILD_MODES

    try:
        import airflow  # noqa: F401  (first: Cosmos's constants, imported alone, meet its plugin half-made)
        from cosmos.constants import ExecutionMode

        watcher = hasattr(ExecutionMode, "WATCHER")
    except ImportError:
        watcher = False
    return tuple(m for m in BUILD_MODES if m != "watcher" or watcher)


def day_due(now: dt.datetime | None = None) -> dt.date:
    """The local day whose runs the scheduler makes now: the latest one that is over."""
    import pendulum

    local = pendulum.instance(now or dt.datetime.now(dt.UTC)).in_timezone(LOCAL_ZONE)
    return local.date() - dt.timedelta(days=1)


@dataclass
class DayRun:
    """What the metadata database says of one day run through the scheduler."""

    mode: str
    day: dt.date
    feeds: int
    wall_seconds: float  # release -> the last build that read every feed ended
    work_seconds: float  # the tasks' durations added up (watcher consumers' waits left out)
    ingest_work_seconds: float
    build_work_seconds: float
    critical_seconds: float  # the longest ingest chain + the final build's longest chain
    queue_seconds: float  # queued -> started, added up over the tasks
    first_task_seconds: float  # release -> the first task started
    tasks: int
    build_runs: int
    # runs that found nothing new to build (their events came in while a build waited for them)
    skipped_build_runs: int
    # ingest DAGs whose run failed (the simulator renames a column on some days of the month)
    failed_ingest: list[str]
    final_build_seconds: float
    marts_with_rows: int
    marts: int
    checked_rows: dict[str, int]
    parallelism: int

    @property
    def slot_bound_seconds(self) -> float:
        """The least wall time the work allows: the critical path, or the work spread over every slot."""
        return max(self.critical_seconds, self.work_seconds / self.parallelism)

    @property
    def overhead_seconds(self) -> float:
        return self.wall_seconds - self.slot_bound_seconds


def _seconds(a: dt.datetime, b: dt.datetime) -> float:
    return (b - a).total_seconds()


def _task_graph(cluster, dag_id: str) -> dict[str, list[str]]:
    """task id -> downstream task ids, from the DAG's serialised form in the metadata database."""
    import json
    import zlib

    row = cluster.query(
        "select data, data_compressed from serialized_dag where dag_id = %s order by created_at desc limit 1",
        (dag_id,),
    )[0]
    data = row["data"] or json.loads(zlib.decompress(bytes(row["data_compressed"])))
    if isinstance(data, str):
        data = json.loads(data)
    graph = {}
    for task in data["dag"]["tasks"]:
        body = task.get("__var", task)
        graph[body["task_id"]] = list(body.get("downstream_task_ids") or [])
    return graph


def _longest_chain(graph: dict[str, list[str]], weight: dict[str, float]) -> float:
    """The heaviest path through the DAG's tasks, each weighing its duration."""
    memo: dict[str, float] = {}

    def heaviest_from(task_id: str) -> float:
        if task_id not in memo:
            after = [heaviest_from(d) for d in graph.get(task_id, ())]
            memo[task_id] = weight.get(task_id, 0.0) + max(after, default=0.0)
        return memo[task_id]

    return max((heaviest_from(t) for t in graph), default=0.0)


def _work(task: dict) -> float:
    """A task instance's seconds of work: start to end; a watcher consumer's and the build's wait for the
    ingest runs are waiting (0)."""
    if not (task["start_date"] and task["end_date"]) or task["task_id"] == WAIT_TASK:
        return 0.0
    operator = task.get("operator") or ""
    if operator.endswith(WATCHER_CONSUMER) and operator != WATCHER_PRODUCER:
        return 0.0
    return _seconds(task["start_date"], task["end_date"])


class DayUnfinished(RuntimeError):
    """The day did not reach its marts within the stage's timeout (a figure, not a crash: the other modes run)."""


def _wait_for_day(cluster, ingest_ids: list[str], timeout: float) -> None:
    """Until every ingest DAG's run has finished (a run that failed its batch too: the day builds without
    it, as in production), no asset event waits for a build and no build runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        ingest = cluster.dag_runs(ingest_ids)
        builds = cluster.dag_runs([BUILD_DAG])
        waiting = cluster.query(
            "select count(*) as n from asset_dag_run_queue where target_dag_id = %s", (BUILD_DAG,)
        )[0]["n"]
        ingest_done = len(ingest) >= len(ingest_ids) and all(
            r["state"] in ("success", "failed") for r in ingest
        )
        if (
            ingest_done
            and builds
            and not waiting
            and all(r["state"] in ("success", "failed") for r in builds)
        ):
            return
        time.sleep(2)
    runs = cluster.dag_runs([*ingest_ids, BUILD_DAG])
    ingest_states = sorted({r["state"] for r in runs if r["dag_id"] != BUILD_DAG})
    builds = [r["state"] for r in runs if r["dag_id"] == BUILD_DAG]
    tasks = cluster.query(
        "select state, count(*) as n from task_instance where dag_id = %s group by 1", (BUILD_DAG,)
    )
    raise DayUnfinished(
        f"not finished within {timeout / 60:g} min: ingest runs {', '.join(ingest_states) or 'none'}; "
        f"warehouse__build runs {', '.join(builds) or 'none'}; their tasks "
        + ", ".join(f"{t['n']} {t['state'] or 'not started'}" for t in tasks)
    )


def _marts(warehouse_url: str) -> tuple[int, int, dict[str, int]]:
    """(marts holding rows, marts, the rows of the checked marts)."""
    import psycopg

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' "
                "and table_type = 'BASE TABLE' order by 1"
            )
        ]
        rows = {name: conn.execute(f'select count(*) from marts."{name}"').fetchone()[0] for name in names}
    return sum(1 for n in rows.values() if n), len(rows), {m: rows.get(m, 0) for m in CHECKED_MARTS}


def _measure(
    cluster,
    mode: str,
    day: dt.date,
    ingest_ids: list[str],
    released: dt.datetime,
    warehouse_url: str,
    parallelism: int,
) -> DayRun:
    import pendulum

    ingest = cluster.dag_runs(ingest_ids)
    start = pendulum.datetime(day.year, day.month, day.day, tz=LOCAL_ZONE)
    wrong = [r["dag_id"] for r in ingest if r["data_interval_start"] != start or r["run_type"] != "scheduled"]
    if wrong or len(ingest) != len(ingest_ids):
        raise RuntimeError(
            f"bench scheduler: expected one scheduled run of {day} per ingest DAG; these differ: "
            f"{[(r['dag_id'], r['run_type'], r['data_interval_start']) for r in ingest]}"
        )
    builds = sorted(cluster.dag_runs([BUILD_DAG]), key=lambda r: r["start_date"])
    last_event = cluster.query(
        "select max(timestamp) as at from asset_event where source_dag_id = any(%s)", (ingest_ids,)
    )[0]["at"]
    tasks = cluster.query(
        "select dag_id, run_id, task_id, operator, state, queued_dttm, start_date, end_date from task_instance "
        "where dag_id = any(%s)",
        ([*ingest_ids, BUILD_DAG],),
    )
    # when each build run began to build (its first task after the wait), None for a run that skipped
    build_started: dict[str, dt.datetime | None] = {r["run_id"]: None for r in builds}
    for t in tasks:
        if (
            t["dag_id"] == BUILD_DAG
            and t["task_id"] != WAIT_TASK
            and t["state"] != "skipped"
            and t["start_date"]
        ):
            began = build_started.get(t["run_id"])
            build_started[t["run_id"]] = min(began, t["start_date"]) if began else t["start_date"]
    built = [r for r in builds if build_started[r["run_id"]] is not None]
    final = built[-1] if built else builds[-1]
    if (
        final["state"] != "success"
        or not build_started[final["run_id"]]
        or build_started[final["run_id"]] < last_event
    ):
        raise RuntimeError(
            f"bench scheduler [{mode}]: the last warehouse__build run that built ({final['run_id']}, "
            f"{final['state']}, building from {build_started[final['run_id']]}) is not a successful build "
            f"begun after the last feed's batch ({last_event})\n{cluster.task_log(BUILD_DAG)}"
        )
    ingest_tasks = [t for t in tasks if t["dag_id"] != BUILD_DAG]
    build_tasks = [t for t in tasks if t["dag_id"] == BUILD_DAG]
    chains: dict[str, float] = {}
    for t in ingest_tasks:
        chains[t["dag_id"]] = chains.get(t["dag_id"], 0.0) + _work(t)
    final_weights = {t["task_id"]: _work(t) for t in build_tasks if t["run_id"] == final["run_id"]}
    critical = max(chains.values(), default=0.0) + _longest_chain(
        _task_graph(cluster, BUILD_DAG), final_weights
    )
    queued = [
        _seconds(t["queued_dttm"], t["start_date"]) for t in tasks if t["queued_dttm"] and t["start_date"]
    ]
    started = [t["start_date"] for t in tasks if t["start_date"]]
    with_rows, marts, checked = _marts(warehouse_url)
    empty = [m for m, n in checked.items() if not n]
    if empty:
        raise RuntimeError(
            f"bench scheduler [{mode}]: the build succeeded but {', '.join(empty)} hold no rows"
        )
    return DayRun(
        mode=mode,
        day=day,
        feeds=len(ingest_ids),
        wall_seconds=_seconds(released, final["end_date"]),
        work_seconds=sum(_work(t) for t in tasks),
        ingest_work_seconds=sum(_work(t) for t in ingest_tasks),
        build_work_seconds=sum(_work(t) for t in build_tasks),
        critical_seconds=critical,
        queue_seconds=sum(max(q, 0.0) for q in queued),
        first_task_seconds=_seconds(released, min(started)),
        tasks=len(tasks),
        build_runs=len(builds),
        skipped_build_runs=len(builds) - len(built),
        failed_ingest=sorted(r["dag_id"] for r in ingest if r["state"] == "failed"),
        final_build_seconds=_seconds(build_started[final["run_id"]], final["end_date"]),
        marts_with_rows=with_rows,
        marts=marts,
        checked_rows=checked,
        parallelism=parallelism,
    )


def run_day(
    mode: str,
    admin_url: str,
    sources: Path,
    run_dir: Path,
    day: dt.date,
    feeds: list[str],
    parallelism: int,
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> DayRun:
    """One day through a scheduler of its own, ``warehouse__build`` in ``mode``, in ``run_dir`` (made
    anew, the simulated ``sources`` copied in: file drops move as they load) on a fresh warehouse database."""
    import psycopg

    from emergency_dw.config import temporary_environment
    from emergency_dw.embedded import embedded_sources

    from .airflow_cluster import airflow_cluster
    from .warehouses import create_database, database_url, drop_database

    said = progress or (lambda line: None)
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(sources, run_dir / "sources")
    database = create_database(admin_url, "edw_bench_scheduler")
    warehouse_url = database_url(admin_url, database)
    ingest_ids = [f"ingest__{feed}" for feed in feeds]
    try:
        with (
            temporary_environment({"EDW_DATA_DIR": str(run_dir), "EDW_WAREHOUSE_URL": warehouse_url}),
            embedded_sources(apis_apart=True) as served,
        ):
            edw_env = {
                **served,
                "EDW_DATA_DIR": str(run_dir),
                "EDW_WAREHOUSE_URL": warehouse_url,
                "EDW_BUILD_MODE": mode,
            }
            with airflow_cluster(
                run_dir / "airflow",
                edw_env,
                admin_url,
                parallelism=parallelism,
                job_schedule=True,
                triggerer=mode == "watcher",
                database_prefix="edw_bench_airflow",
            ) as cluster:
                said(f"scheduler [{mode}]: Airflow up; waiting for the dag-processor")
                cluster.wait_for_dags([*ingest_ids, BUILD_DAG], timeout=300)
                with psycopg.connect(cluster.metadata_url, autocommit=True) as conn:
                    conn.execute("update dag set is_paused = false where dag_id = %s", (BUILD_DAG,))
                    released = dt.datetime.now(dt.UTC)
                    # the day ends: every feed's DAG at one instant (what `airflow dags unpause` writes)
                    conn.execute("update dag set is_paused = false where dag_id = any(%s)", (ingest_ids,))
                said(f"scheduler [{mode}]: {len(ingest_ids)} ingest DAGs released for {day}")
                _wait_for_day(cluster, ingest_ids, timeout)
                run = _measure(cluster, mode, day, ingest_ids, released, warehouse_url, parallelism)
        said(
            f"scheduler [{mode}]: day end -> marts {run.wall_seconds:.1f} s (task work {run.work_seconds:.1f} s, "
            f"critical path {run.critical_seconds:.1f} s, overhead {run.overhead_seconds:.1f} s), "
            f"{run.build_runs} warehouse__build run(s), {run.marts_with_rows} of {run.marts} marts hold rows"
            + (f"; failed ingest runs: {', '.join(run.failed_ingest)}" if run.failed_ingest else "")
        )
        return run
    finally:
        drop_database(admin_url, database)


def bench_scheduler(
    admin_url: str,
    scale: float,
    modes: tuple[str, ...] | None = None,
    feeds: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Figure]:
    """The day due now, simulated once, run through the scheduler once per build mode."""
    from emergency_dw.catalog import all_feeds
    from emergency_dw.config import settings, temporary_environment
    from emergency_dw.pipeline.build_mode import DEFAULT_BUILD_MODE

    from .processes import simulate_process

    settings_of = targets().get("scheduler", {})
    parallelism = int(settings_of.get("parallelism", 4))
    timeout = float(settings_of.get("timeout_minutes", 30)) * 60
    modes = modes or (
        DEFAULT_BUILD_MODE,
    )  # the per-model modes take half an hour each on 2 cores: on request
    unknown = [m for m in modes if m not in build_modes()]
    if unknown:
        raise ValueError(f"bench: no build mode {', '.join(unknown)}; one of {', '.join(build_modes())}")
    names = list(feeds) if feeds else [f.name for f in all_feeds()]
    root = settings().data_dir / "bench" / "scheduler"
    shutil.rmtree(root, ignore_errors=True)
    day = day_due()
    with temporary_environment({"EDW_DATA_DIR": str(root / "world")}):
        simulate_seconds = simulate_process(day, scale)
    if progress:
        progress(f"scheduler: {day} simulated at scale {scale} in {simulate_seconds:.1f} s")
    figures: list[Figure] = []
    for mode in modes:
        try:
            run = run_day(
                mode,
                admin_url,
                root / "world" / "sources",
                root / mode,
                day,
                names,
                parallelism,
                timeout,
                progress,
            )
        except DayUnfinished as exc:
            if progress:
                progress(f"scheduler [{mode}]: {exc}")
            figures.append(unfinished_figure(mode, timeout, str(exc)))
            continue
        figures += figures_of(run, scale)
    if day_due() != day:
        raise RuntimeError(
            f"bench scheduler: the local day changed during the run ({day} -> {day_due()}); run again"
        )
    return figures


def scheduler_name(mode: str, what: str) -> str:
    return f"scheduler [{mode}]: {what}"


def unfinished_figure(mode: str, timeout: float, why: str) -> Figure:
    """A mode whose day did not reach the marts in time: its wall time is at least the timeout (missed)."""
    limit = float(targets()["scheduler"]["max_day_end_to_marts_minutes"]) * 60
    return Figure(
        scheduler_name(mode, "day end -> marts"),
        timeout,
        "s",
        f"< {limit:g} s",
        False,
        f"{why} ([scheduler] timeout_minutes)",
        "postgres",
    )


def figures_of(run: DayRun, scale: float) -> list[Figure]:
    goal = targets()["scheduler"]
    limit = float(goal["max_day_end_to_marts_minutes"]) * 60
    share_limit = float(goal["max_overhead_share"])
    full = scale >= 1
    judged = "" if full else "; time targets are judged at full scale only"
    share = run.overhead_seconds / run.wall_seconds if run.wall_seconds else 0.0
    name = lambda what: scheduler_name(run.mode, what)  # noqa: E731
    return [
        Figure(
            name("day end -> marts"),
            run.wall_seconds,
            "s",
            f"< {limit:g} s",
            run.wall_seconds < limit if full else None,
            f"{run.day}, {run.feeds} feeds released at once -> the last warehouse__build that read every feed "
            f"ended; LocalExecutor, {run.parallelism} slots{judged}"
            + (
                f"; {len(run.failed_ingest)} ingest run(s) failed their batch and the day was built without "
                f"them: {', '.join(run.failed_ingest)} (the simulator renames a column on some days of the "
                "month; their task logs say which rule)"
                if run.failed_ingest
                else ""
            ),
            "postgres",
        ),
        Figure(
            name("task work"),
            run.work_seconds,
            "s",
            "",
            None,
            f"{run.tasks} task runs' start -> end added up: ingest {run.ingest_work_seconds:.1f} s, "
            f"warehouse__build {run.build_work_seconds:.1f} s"
            + (" (the per-model watchers' waits left out)" if run.mode == "watcher" else ""),
            "postgres",
        ),
        Figure(
            name("critical path"),
            run.critical_seconds,
            "s",
            "",
            None,
            "the longest ingest DAG run's tasks + the longest chain of the final build's tasks "
            f"(that build: {run.final_build_seconds:.1f} s from its first task after the wait to its end)",
            "postgres",
        ),
        Figure(
            name("scheduler overhead"),
            run.overhead_seconds,
            "s",
            f"<= {share_limit:.0%} of the wall time",
            share <= share_limit if full else None,
            f"{share:.0%} of the wall time: day end -> marts minus the least the work allows, the larger of "
            f"the critical path and the task work over {run.parallelism} slots ({run.slot_bound_seconds:.1f} s); "
            f"queued -> running {run.queue_seconds:.1f} s over the tasks, release -> first task "
            f"{run.first_task_seconds:.1f} s",
            "postgres",
        ),
        Figure(
            name("warehouse__build runs"),
            run.build_runs,
            "runs",
            "",
            None,
            f"made by the raw tables' asset events, {run.skipped_build_runs} of them skipped: nothing new to build "
            "(max_active_runs=1: events that come in while a run waits for the ingest runs or builds start the "
            "next run, which finds them built)",
            "postgres",
        ),
        Figure(
            name("marts holding rows"),
            run.marts_with_rows,
            "marts",
            "",
            None,
            f"of {run.marts}; " + ", ".join(f"{m} {n:,} rows" for m, n in run.checked_rows.items()),
            "postgres",
        ),
    ]


SCHEDULER_FIGURES = (
    "day end -> marts",
    "task work",
    "critical path",
    "scheduler overhead",
    "warehouse__build runs",
    "marts holding rows",
)


def scheduler_modes(figures: list[Figure]) -> list[str]:
    """The build modes the scheduler stage ran, in their order."""
    modes: list[str] = []
    for f in figures:
        if f.name.startswith("scheduler [") and "]: " in f.name:
            mode = f.name[len("scheduler [") : f.name.index("]: ")]
            if mode not in modes:
                modes.append(mode)
    return modes


def modes_side_by_side(figures: list[Figure], modes: list[str]) -> list[tuple[str, list[Figure | None], str]]:
    """A row per scheduler figure: (what, each mode's figure or None, the target)."""
    by_name = {f.name: f for f in figures}
    rows = []
    for what in SCHEDULER_FIGURES:
        cells = [by_name.get(scheduler_name(mode, what)) for mode in modes]
        target = next((f.target for f in cells if f is not None and f.target), "")
        rows.append((what, cells, target))
    return rows
