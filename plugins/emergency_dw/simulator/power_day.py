"""One simulated day of every meter's load, as the anomalies, near misses and data problems are put in.

Each meter carries at most one of them a day (an anomaly, a near miss or an outage): ``claim`` marks the
meter used and the readings around the item protected (late delivery and random defects leave them
alone, so that what the truth says is what the warehouse gets).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .common import scaled
from .load_profiles import SLOTS, Columns, DayParams, LoadModel
from .power_checks import MeterHistory

if TYPE_CHECKING:
    from .generators.base import SimContext

FEED = "power_load_readings"
NEAR_MISS_COLUMNS = ["kind", "enterprise_id", "subject_id", "started_at", "ended_at", "detail"]
DATA_QUALITY_COLUMNS = NEAR_MISS_COLUMNS
DATA_QUALITY_KINDS = ("meter_offline", "missing_readings", "meter_replaced", "no_contracted_capacity")


@dataclass
class PowerDay:
    ctx: SimContext
    day: dt.date
    model: LoadModel
    params: DayParams
    expected: np.ndarray  # (meters, 96) noise-free kW (a suspended enterprise's standby included)
    load: np.ndarray  # (meters, 96) kW as read
    suspended: np.ndarray  # (meters, 96) a suspension order is in force
    slot_starts: pd.DatetimeIndex  # the 96 intervals' starts, UTC
    noise_factors: np.ndarray  # (meters, 96) the reading noise: load = expected x this
    meter_ids: np.ndarray  # each enterprise's meter today (its new one from a replacement on)
    recently_replaced: np.ndarray  # (meters,) its meter was replaced in the last 56 days (or today)
    suspension_recent: np.ndarray  # (meters,) a suspension order in force in the last 56 days (or today)
    unsettled: np.ndarray  # (meters,) a Spring Festival shutdown or restart in the last 56 days
    capacity: np.ndarray = field(init=False)
    enterprise_ids: np.ndarray = field(init=False)
    used: np.ndarray = field(init=False)
    protected: np.ndarray = field(init=False)
    missing: np.ndarray = field(init=False)  # readings not delivered
    offline: np.ndarray = field(init=False)  # readings of a meter without supply: 0 kW, 0 V, 0 A
    anomalies: list[dict] = field(default_factory=list)
    near_misses: list[dict] = field(default_factory=list)
    data_quality: list[dict] = field(default_factory=list)
    _histories: dict[int, MeterHistory] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.capacity = self.model.metered["capacity_kw"].to_numpy()
        self.enterprise_ids = self.model.metered["enterprise_id"].to_numpy().astype(object)
        self.used = np.zeros(len(self.load), dtype=bool)
        self.protected = np.zeros(self.load.shape, dtype=bool)
        self.missing = np.zeros(self.load.shape, dtype=bool)
        self.offline = np.zeros(self.load.shape, dtype=bool)

    # ---------------------------------------------------------------- the world, for one day
    @property
    def cols(self) -> Columns:
        """The operating profiles (and meter roles) as arrays aligned with the meters."""
        return self.model.cols

    @property
    def noise(self) -> float:
        return float(self.ctx.scenario.power["noise"])

    def rng(self, *labels: object) -> np.random.Generator:
        return self.ctx.rng(FEED, self.day, *labels)

    def role(self, *roles: str) -> np.ndarray:
        return np.isin(self.cols["role"], roles)

    def count(self, section: str, kind: str) -> int:
        """How many of ``kind`` a day at this scale (the scenario's ``power.<section>``, at least one)."""
        return scaled(int(self.ctx.scenario.power[section][kind]), self.ctx.scale)

    def pool(self, eligible: np.ndarray, size: int, label: str) -> np.ndarray:
        """Up to ``size`` eligible meters that carry nothing yet today, in a random order."""
        return self.rng(label, "pool").permutation(np.flatnonzero(eligible & ~self.used))[:size]

    def normal_day(self) -> np.ndarray:
        """Meters working a normal day: not resting, not restarting or turned down, not suspended, no
        meter replacement and no suspension order in the last 56 days."""
        p = self.params
        return (
            ~p.rest
            & (p.activity == 1)
            & (p.level == 1)
            & ~self.suspended.any(axis=1)
            & ~self.suspension_recent
            & ~self.recently_replaced
        )

    def histories(self, idx: np.ndarray) -> dict[int, MeterHistory]:
        """What the rules remember of these meters' last 56 days (computed once for all of them)."""
        todo = np.array([k for k in idx if int(k) not in self._histories], dtype=np.int64)
        if len(todo):
            days = self.model.history(self.day, todo)
            for k, history in zip(todo, days, strict=True):
                self._histories[int(k)] = MeterHistory.of(history)
        return {int(k): self._histories[int(k)] for k in idx}

    # ---------------------------------------------------------------- putting items in
    def claim(self, k: int, a: int, b: int, margin: int = 1) -> None:
        """Meter ``k`` carries an item over slots [a, b): no other today; its readings are protected."""
        self.used[k] = True
        self.protected[k, max(0, a - margin) : min(SLOTS, b + margin)] = True

    def at(self, slot: int) -> pd.Timestamp:
        return self.slot_starts[slot]

    def clock(self, slot: int) -> str:
        """Local time of a slot's start, ``HH:MM``."""
        return f"{slot // 4:02d}:{slot % 4 * 15:02d}"

    def record(self, truth: list[dict], kind: str, k: int, a: int, b: int, detail: str) -> None:
        """A near miss or a data problem of meter ``k`` over slots [a, b] (both included)."""
        truth.append(
            {
                "kind": kind,
                "enterprise_id": self.enterprise_ids[k],
                "subject_id": self.meter_ids[k],
                "started_at": self.at(a),
                "ended_at": self.at(b),
                "detail": detail,
            }
        )

    def anomaly(self, rule: str, k: int, a: int, b: int, peak: float, threshold: float) -> None:
        """An injected anomaly of meter ``k``: its rule's event from slot ``a`` to slot ``b`` (both
        included: ``ended_at`` is the last interval's start)."""
        serial = sum(1 for x in self.anomalies if x["rule"] == rule)
        self.anomalies.append(
            {
                "anomaly_id": f"{self.day:%Y%m%d}-{rule}-{serial:03d}",
                "rule": rule,
                "feed": FEED,
                "enterprise_id": self.enterprise_ids[k],
                "subject_id": self.meter_ids[k],
                "started_at": self.at(a),
                "ended_at": self.at(b),
                "intervals": b - a + 1,
                "peak_value": round(float(peak), 2),
                "threshold": round(float(threshold), 2),
                "unit": "kW",
            }
        )


def runs_of(mask: np.ndarray, length: int) -> np.ndarray:
    """Start slots of the runs of ``length`` consecutive True values of a day's ``mask``."""
    if len(mask) < length:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.lib.stride_tricks.sliding_window_view(mask, length).all(axis=1))


def quiet_hours(cols: Columns, scenario_power: dict) -> np.ndarray:
    """(meters, 24): the local hours wholly outside the shift of a five- or six-day plant, whatever its
    start and stop do (jitter, a shifted start), with 15 minutes to spare; none for a continuous plant."""
    spare = 15.0
    early = max(scenario_power["jitter_minutes"][1], scenario_power["near_miss"]["shifted_start_minutes"][1])
    busy_from = cols["start"] - early - spare
    busy_to = cols["stop"] + scenario_power["jitter_minutes"][1] + cols["stop_ramp"] + spare
    hour_from = np.arange(24)[None, :] * 60.0
    quiet = (hour_from + 60 <= busy_from[:, None]) | (hour_from >= busy_to[:, None])
    return quiet & (cols["pattern"] != "continuous")[:, None]


def quiet_slots(quiet: np.ndarray, before: int, after: int) -> np.ndarray:
    """(meters, 96): slots ``t`` whose readings from ``t - before`` to ``t + after`` all lie in quiet
    hours, and so do the hours next to ``t``'s (the surge rule looks an hour either side)."""
    hour = np.arange(SLOTS) // 4
    slot_quiet = quiet[:, hour]
    ok = np.ones_like(slot_quiet)
    for shift in range(-before, after + 1):
        rolled = np.zeros_like(slot_quiet)
        lo, hi = max(0, -shift), min(SLOTS, SLOTS - shift)
        rolled[:, lo:hi] = slot_quiet[:, lo + shift : hi + shift]
        ok &= rolled
    return ok & quiet[:, (hour - 1) % 24] & quiet[:, (hour + 1) % 24]
