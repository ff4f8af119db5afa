"""A figure of the benchmark, the targets it is held to (``bench.toml``) and the memory it measures: the
peak RSS of one process, the PSS of the pipeline's processes together."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TARGETS_FILE = Path(__file__).with_name("bench.toml")


def targets() -> dict:
    """The targets of DESIGN section 7 and the sizes of the long runs (``bench.toml``; ``EDW_BENCH_TARGETS``
    names another file)."""
    import tomllib

    path = Path(os.environ.get("EDW_BENCH_TARGETS") or TARGETS_FILE)
    with path.open("rb") as handle:
        return tomllib.load(handle)


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool | None  # None: informational, no target
    detail: str = ""
    # the warehouse it was measured on ("duckdb", "postgres"); None: no warehouse's (validation, memory
    # of several stages)
    warehouse: str | None = None


def feeds_said(feeds: tuple[str, ...] | None) -> str:
    """How a figure's detail names the feeds it covers: every feed, or the ones ``--feed`` chose."""
    return "all feeds" if feeds is None else "feeds " + ", ".join(feeds)


def peak_rss_mb() -> float:
    """Peak resident memory of this process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Peak RSS of each build process of this bench run (see build_process), and of each ingest task's
# process (see IngestWorkers).
BUILD_PEAKS_MB: list[float] = []
TASK_PEAKS_MB: list[float] = []


def _status_mb(pid: int, field: str) -> float | None:
    """A memory figure of /proc/<pid>/status (VmHWM: the process's own peak RSS; VmRSS: its RSS now).
    Linux's RUSAGE_CHILDREN cannot give a child's peak: its ru_maxrss starts at its parent's size at
    fork, so a big parent hides a smaller child."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def high_water_mb(pid: int) -> float | None:
    return _status_mb(pid, "VmHWM")


def _pss_mb(pid: int) -> float:
    """The process's proportional set size (a page shared by n processes counts 1/n in each), from
    /proc/<pid>/smaps_rollup; 0 when it has gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0


def _is_world(process) -> bool:
    """A process of the simulated world (``edw simulate``, ``edw simulate serve``): a department's
    systems, not the pipeline."""
    try:
        command = process.cmdline()
    except Exception:  # noqa: BLE001 - gone or not ours: not counted either way
        return True
    return "emergency_dw.cli" in command and "simulate" in command


class MemorySampler:
    """The pipeline's memory as it runs: the PSS of this process and of its descendants (ingest workers
    and their task processes, build processes) added up every ``interval`` seconds. PSS counts a page
    that forked processes share once in all, where adding up their RSS would count it in each. The
    simulated world's processes are left out. ``stage()`` gives the peak of one stage."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        import psutil

        self._me = psutil.Process()
        self._world: dict[int, bool] = {}
        self.peak_mb = 0.0
        self._stage_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="memory-sampler", daemon=True
        )
        self._thread.start()

    def now_mb(self) -> float:
        import psutil

        total = _pss_mb(self._me.pid)
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in self._world:
                self._world[child.pid] = _is_world(child)
            if not self._world[child.pid]:
                total += _pss_mb(child.pid)
        return total

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            total = self.now_mb()
            self.peak_mb = max(self.peak_mb, total)
            self._stage_peak = max(self._stage_peak, total)

    @contextlib.contextmanager
    def stage(self) -> Iterator[dict]:
        """``{"peak_mb": ...}``, filled in when the block ends: the block's peak."""
        out: dict = {}
        self._stage_peak = self.now_mb()
        try:
            yield out
        finally:
            out["peak_mb"] = max(self._stage_peak, self.now_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def memory_figure(stage: str, peak: float, detail: str) -> Figure:
    limit = targets()["memory"]["max_mib"]
    return Figure(f"peak memory: {stage}", peak, "MiB", f"< {limit} MiB", peak < limit, detail)


PSS_DETAIL = (
    "the pipeline's processes added up as they ran at once, sampled every 0.2 s, each page counted once "
    "(PSS: forked task processes share their worker's pages); the simulated world apart"
)
