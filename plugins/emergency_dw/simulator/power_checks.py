"""The power rules' arithmetic on one meter-day of noise-free load: is an injected anomaly what its rule
defines, and does a near miss stay clear of every rule? (The rules as the warehouse's power models
define them: overload, surge, abnormal fluctuation with its relative two-hour windows and new peaks.)

The simulator knows each meter's normal load exactly, so it can check what it injects before it does:
an abnormal fluctuation must score above the relative rule's threshold with a margin, a near miss must
stay below every threshold with a margin. The checks use the expected load, and the reading noise is
within the margins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW = 8  # intervals: two hours
TOLERANCE = 2  # intervals: the usual profile may move by +-30 minutes
MIN_RATIO = 1.5  # a two-hour change the relative rule can flag
NEW_PEAK_RATIO = 1.2  # an hour above this x the highest hour of the look-back
SURGE_RATIO = 2.0
EPSILON_SHARE = 0.02  # the rule's regulariser: 2 % of the meter's level
FAIR_MARGIN = 0.12  # an injected fluctuation scores at least ln(1.5) + this
CLEAR_MARGIN = 0.10  # a near miss scores at most ln(1.5) - this


@dataclass(frozen=True)
class MeterHistory:
    """What the rules remember of a meter's last 56 days (from its noise-free load)."""

    hour_high: np.ndarray  # (24,) highest load in each local hour
    best_hour: float  # highest one-hour mean
    level: float  # median of each day's 90th percentile of hourly loads

    @classmethod
    def of(cls, days: np.ndarray) -> MeterHistory:
        """``days``: (days, 96) load of the 56 days before."""
        hourly = days.reshape(len(days), 24, 4)
        trailing = np.lib.stride_tricks.sliding_window_view(days, 4, axis=1).mean(axis=2)
        return cls(
            hour_high=hourly.max(axis=(0, 2)),
            best_hour=float(trailing.max()),
            level=float(np.median(np.percentile(hourly.mean(axis=2), 90, axis=1))),
        )

    def around(self, slot: int) -> float:
        """Highest load within an hour of ``slot``'s hour (the surge rule's look-back)."""
        hour = slot // 4
        return float(self.hour_high[[(hour - 1) % 24, hour, (hour + 1) % 24]].max())


def _means(x: np.ndarray) -> np.ndarray:
    """Mean of every window of ``WINDOW`` intervals, by its first interval."""
    return np.lib.stride_tricks.sliding_window_view(x, WINDOW).mean(axis=1)


def window_scores(load: np.ndarray, usual: np.ndarray, level: float) -> tuple[float, float]:
    """Highest up and down scores of the relative rule over the windows of one day whose two-hour
    windows before and after lie within the day: ln of the change against the usual profile and
    against both neighbours, beyond what the usual profile does at that time (+-30 minutes)."""
    e = EPSILON_SHARE * level
    win, usual_win = _means(load) + e, _means(usual) + e
    starts = np.arange(WINDOW, len(load) - 2 * WINDOW + 1)
    s1 = np.log(win[starts] / usual_win[starts])
    o2 = np.log(win[starts] / win[starts - WINDOW])
    o3 = np.log(win[starts] / win[starts + WINDOW])
    u2 = np.log(usual_win[starts] / usual_win[starts - WINDOW])
    u3 = np.log(usual_win[starts] / usual_win[starts + WINDOW])
    pad2 = np.pad(u2, TOLERANCE, mode="edge")
    pad3 = np.pad(u3, TOLERANCE, mode="edge")
    near2 = np.lib.stride_tricks.sliding_window_view(pad2, 2 * TOLERANCE + 1)
    near3 = np.lib.stride_tricks.sliding_window_view(pad3, 2 * TOLERANCE + 1)
    up = np.minimum(s1, np.minimum(o2 - near2.max(axis=1), o3 - near3.max(axis=1)))
    down = -np.maximum(s1, np.maximum(o2 - near2.min(axis=1), o3 - near3.min(axis=1)))
    return float(up.max()), float(down.max())


def best_hour(load: np.ndarray) -> float:
    """Highest one-hour (four-interval) trailing mean of the day."""
    return float(np.lib.stride_tricks.sliding_window_view(load, 4).mean(axis=1).max())


def fluctuation_is_fair(load: np.ndarray, usual: np.ndarray, history: MeterHistory, up: bool) -> bool:
    """An injected fluctuation the relative rule flags with a margin."""
    up_score, down_score = window_scores(load, usual, history.level)
    return (up_score if up else down_score) >= np.log(MIN_RATIO) + FAIR_MARGIN


def stays_clear(
    load: np.ndarray, usual: np.ndarray, history: MeterHistory, capacity: float, noise: np.ndarray | float
) -> bool:
    """A near miss no rule flags, even with the reading noise at its worst (``noise``: per reading, 0
    where a value is set exactly): no two-hour change of 1.5x, no new peak, no surge, no overload."""
    hi, lo = load * (1 + noise), load * (1 - noise)
    up_score, down_score = window_scores(load, usual, history.level)
    if max(up_score, down_score) > np.log(MIN_RATIO) - CLEAR_MARGIN:
        return False
    if best_hour(hi) > NEW_PEAK_RATIO * history.best_hour * 0.95:
        return False
    if (hi >= 0.9 * capacity).sum() >= 2:
        return False
    return not surges(hi, lo, history).any()


def surges(hi: np.ndarray, lo: np.ndarray, history: MeterHistory) -> np.ndarray:
    """Intervals where the surge rule could fire, readings anywhere between ``lo`` and ``hi`` (the step
    condition against the similar days left out: that only makes this stricter)."""
    hits = np.zeros(len(hi), dtype=bool)
    for t in range(1, len(hi) - 1):
        if hi[t] >= SURGE_RATIO * lo[t - 1] and hi[t + 1] >= SURGE_RATIO * lo[t - 1]:
            high = history.around(t)
            hits[t] = hi[t] > high and hi[t + 1] > high
    return hits
