"""Chart geometry for the static pages: histograms against a target line, drawn as inline SVG by templates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 34, 16, 18, 26  # pixels around the plot area
# Axis steps a reader counts in: seconds, then minutes, then hours.
TIME_STEPS = (5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # e.g. "60-75 s: 12 incidents"
    over_target: bool


@dataclass
class Marker:
    x: float
    label: str


@dataclass
class Histogram:
    width: int
    height: int
    bars: list[Bar]
    target: Marker | None
    p50: Marker | None
    p90: Marker | None
    x_ticks: list[Marker] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    plot_left: int = PLOT_LEFT
    plot_bottom: float = 0.0
    plot_right: float = 0.0
    empty: bool = False


def duration(seconds: float) -> str:
    """A duration as people say it: 45 s, 4 min 10 s, 1 h 05 min."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return f"{m} min {s:02d} s" if s else f"{m} min"
    h, m = divmod(seconds // 60, 60)
    return f"{h} h {m:02d} min"


def _axis_label(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        m, s = divmod(seconds, 60)
        return f"{m}m" if not s else f"{m}m{s:02d}"
    return f"{seconds / 3600:g}h"


def time_step(span: float, ticks: int = 5) -> float:
    """The smallest reader-friendly time step giving at most ``ticks`` steps over ``span`` seconds."""
    for step in TIME_STEPS:
        if span / step <= ticks:
            return step
    return nice_step(span, ticks)


def nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(ticks, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def histogram(
    values: list[float],
    target: float | None,
    p50: float | None,
    p90: float | None,
    *,
    bins: int,
    axis_target_multiple: float,
    width: int,
    height: int,
) -> Histogram:
    """Equal-width bins from 0; the last bin also holds everything beyond the axis (its label says so)."""
    plot_w = width - PLOT_LEFT - PLOT_RIGHT
    plot_h = height - PLOT_TOP - PLOT_BOTTOM
    bottom, right = PLOT_TOP + plot_h, PLOT_LEFT + plot_w
    ends = [v for v in ((target or 0) * axis_target_multiple, (p90 or 0) * 1.15) if v > 0]
    axis_max = max(ends) if ends else max(values, default=60.0) or 60.0
    step = time_step(axis_max)
    axis_max = math.ceil(axis_max / step) * step
    bin_w = axis_max / bins
    counts = [0] * bins
    for v in values:
        counts[min(int(max(v, 0) / bin_w), bins - 1)] += 1
    peak = max(counts, default=0) or 1

    def x_of(seconds: float) -> float:
        return round(PLOT_LEFT + plot_w * min(max(seconds, 0), axis_max) / axis_max, 1)

    bars = []
    for k, n in enumerate(counts):
        low, high = k * bin_w, (k + 1) * bin_w
        span = f"{duration(low)} and more" if k == bins - 1 else f"{duration(low)} to {duration(high)}"
        h = plot_h * n / peak
        bars.append(
            Bar(
                x=x_of(low) + 0.5,
                y=round(bottom - h, 1),
                width=max(round(plot_w / bins - 1, 1), 1),
                height=round(h, 1),
                count=n,
                label=f"{span}: {n} incident{'s' if n != 1 else ''}",
                over_target=target is not None and low >= target,
            )
        )
    y_step = max(1, math.ceil(nice_step(peak, 3)))
    y_ticks = [(round(bottom - plot_h * c / peak, 1), str(c)) for c in range(0, peak + 1, y_step)]
    x_ticks = [Marker(x_of(t), _axis_label(t)) for t in _frange(0, axis_max, step)]
    return Histogram(
        width=width,
        height=height,
        bars=bars,
        target=Marker(x_of(target), f"target {duration(target)}") if target is not None else None,
        p50=Marker(x_of(p50), f"p50 {duration(p50)}") if p50 is not None else None,
        p90=Marker(x_of(p90), f"p90 {duration(p90)}") if p90 is not None else None,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        plot_bottom=bottom,
        plot_right=right,
        empty=not values,
    )


def _frange(start: float, stop: float, step: float) -> list[float]:
    n = int(round((stop - start) / step))
    return [start + k * step for k in range(n + 1)]
