"""The simulated city: enterprises, meters, cables, teams, people. Depends on the seed and scale only,
never on the simulated date, so any day can be generated alone and comes out the same."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..catalog import get_feed
from ..catalog.references import INDUSTRIES, TOWNS
from .common import company_names, day_start_utc, id_numbers, jitter, person_names, phones, rng_for, scaled
from .load_profiles import draw_operating_profiles
from .scenario import Scenario

METERED_ENTERPRISES = 14_355
REGISTERED_ENTERPRISES = 16_000
MONITORED_CABLES = 1_200

# Industry: (share of metered enterprises, shift pattern weights continuous/two_shift/day_shift, major-hazard rate)
INDUSTRY_PROFILE: dict[str, tuple[float, tuple[float, float, float], float]] = {
    "auto_parts": (0.20, (0.10, 0.50, 0.40), 0.005),
    "footwear_leather": (0.16, (0.00, 0.40, 0.60), 0.004),
    "machinery": (0.14, (0.05, 0.45, 0.50), 0.006),
    "chemicals": (0.05, (0.80, 0.15, 0.05), 0.120),
    "plastics": (0.09, (0.60, 0.30, 0.10), 0.020),
    "metal_products": (0.10, (0.20, 0.50, 0.30), 0.010),
    "textiles": (0.09, (0.55, 0.35, 0.10), 0.005),
    "food": (0.06, (0.30, 0.40, 0.30), 0.015),
    "electrical": (0.06, (0.10, 0.50, 0.40), 0.005),
    "printing_packaging": (0.05, (0.10, 0.40, 0.50), 0.010),
}
SHIFTS = ("continuous", "two_shift", "day_shift")
TOWN_WEIGHTS = np.array(
    [
        0.22,
        0.05,
        0.06,
        0.09,
        0.10,
        0.08,
        0.05,
        0.06,
        0.03,
        0.03,
        0.06,
        0.02,
        0.03,
        0.03,
        0.03,
        0.03,
        0.015,
        0.015,
    ]
)
TOWN_WEIGHTS = TOWN_WEIGHTS / TOWN_WEIGHTS.sum()
TOWN_CODES = np.array([t.code for t in TOWNS])
TOWN_NAMES = np.array([t.name_zh for t in TOWNS])
TOWN_LAT = np.array([t.lat for t in TOWNS])
TOWN_LON = np.array([t.lon for t in TOWNS])

# The 63 rescue teams: 49 professional, 14 social.
PROFESSIONAL_TEAMS = (
    [("fire", "消防救援站", 18)]
    + [("medical", "急救站", 14)]
    + [("general", "巡警大队", 12)]
    + [("hazmat", "危化品救援队", 2)]
    + [("water_rescue", "水上救援队", 3)]
)
SOCIAL_TEAMS = [
    ("water_rescue", "蓝天救援队", 4),
    ("mountain_rescue", "山地救援队", 3),
    ("general", "应急志愿服务队", 7),
]


def _touch_day(seed: int, label: str, n: int, day: dt.date) -> np.ndarray:
    """Day (as an ordinal) each of ``n`` records was last changed on or before ``day``.

    Each record changes every ``period`` days with its own phase, so a snapshot's ``updated_at`` moves
    forward the way a real system's would and an ``updated_since`` pull returns only what changed."""
    rng = rng_for(seed, label, "touch")
    period = rng.integers(20, 400, size=n)
    phase = rng.integers(0, 400, size=n)
    ordinal = day.toordinal()
    return ordinal - ((ordinal - phase) % period)


@dataclass
class World:
    seed: int
    scale: float
    scenario: Scenario

    def rng(self, *labels: object) -> np.random.Generator:
        return rng_for(self.seed, "world", *labels)

    def touch_times(self, label: str, n: int, day: dt.date) -> pd.DatetimeIndex:
        """``updated_at`` of ``n`` snapshot records as of ``day`` (UTC)."""
        ordinals = _touch_day(self.seed, label, n, day)
        seconds = self.rng(label, "touch-second").integers(8 * 3600, 18 * 3600, size=n)
        local_midnights = np.array([day_start_utc(dt.date.fromordinal(int(o))) for o in np.unique(ordinals)])
        lookup = dict(zip(np.unique(ordinals), local_midnights, strict=True))
        starts = pd.DatetimeIndex([lookup[o] for o in ordinals])
        return starts + pd.to_timedelta(seconds, unit="s")

    @cached_property
    def enterprises(self) -> pd.DataFrame:
        """Registered enterprises; the first ``metered`` ones carry an electricity meter."""
        n_metered = scaled(METERED_ENTERPRISES, self.scale, minimum=20)
        n = n_metered + scaled(REGISTERED_ENTERPRISES - METERED_ENTERPRISES, self.scale, minimum=2)
        rng = self.rng("enterprises")
        industries = np.array(list(INDUSTRY_PROFILE))
        shares = np.array([p[0] for p in INDUSTRY_PROFILE.values()])
        industry = rng.choice(industries, size=n, p=shares / shares.sum())
        shift = np.empty(n, dtype=object)
        hazard_rate = np.empty(n)
        for code, (_, weights, rate) in INDUSTRY_PROFILE.items():
            mask = industry == code
            shift[mask] = rng.choice(SHIFTS, size=mask.sum(), p=np.array(weights) / sum(weights))
            hazard_rate[mask] = rate
        town_idx = rng.choice(len(TOWNS), size=n, p=TOWN_WEIGHTS)
        capacity = np.clip(np.round(rng.lognormal(np.log(400), 0.9, size=n), -1), 50, 20_000)
        peak_lo, peak_hi = self.scenario.power["peak_fraction"]
        suffixes = np.array([INDUSTRIES[c][:2] for c in industry])
        ids = np.array([f"E{k:06d}" for k in range(1, n + 1)])
        frame = pd.DataFrame(
            {
                "enterprise_id": ids,
                "uscc": [f"91330327{x:09d}{'ABCDEFGHJK'[x % 10]}" for x in rng.integers(0, 10**9, size=n)],
                "name": company_names(rng, n, TOWN_NAMES[town_idx], suffixes),
                "town_code": TOWN_CODES[town_idx],
                "industry_code": industry,
                "shift": shift,
                "capacity_kw": capacity,
                "peak_fraction": rng.uniform(peak_lo, peak_hi, size=n),
                # three draws per enterprise of two retired columns (the load profile is now the
                # operating_profiles'): kept so that every column after them keeps its values
                "_retired": rng.random((3, n))[0],
                "lat": jitter(rng, TOWN_LAT[town_idx], 3.0),
                "lon": jitter(rng, TOWN_LON[town_idx], 3.0),
                "is_major_hazard_source": rng.random(n) < hazard_rate,
                "standardisation_grade": rng.choice(
                    ["grade_1", "grade_2", "grade_3", "none"], size=n, p=[0.03, 0.17, 0.55, 0.25]
                ),
                "employees": np.clip(np.round(capacity / 8 * rng.uniform(0.5, 1.5, n)), 3, 8000).astype(int),
                "registered_on": [
                    dt.date(1995, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 10_000, size=n)
                ],
                "legal_rep_name": person_names(rng, n),
                "legal_rep_phone": phones(rng, n),
                "safety_officer_name": person_names(rng, n),
                "safety_officer_phone": phones(rng, n),
                "metered": np.arange(n) < n_metered,
            }
        )
        frame["meter_id"] = np.where(frame["metered"], [f"M{k:08d}" for k in range(1, n + 1)], None)
        return frame.drop(columns="_retired")

    @cached_property
    def metered(self) -> pd.DataFrame:
        return self.enterprises[self.enterprises["metered"]].reset_index(drop=True)

    @cached_property
    def operating_profiles(self) -> pd.DataFrame:
        """Each metered enterprise's operating profile (load_profiles.py) and its meter's role in the
        simulation (rows aligned with ``metered``):

        - ``no_capacity``: the emergency bureau has no safety profile on file, so no contracted capacity;
        - ``flaky``: an old meter or a poor signal: it goes offline now and then;
        - ``rough``: takes the spikes, overloads and meter replacements, as do the enterprises that ever
          had a suspension order;
        - ``regular``: a clean history, where a surge or an abnormal fluctuation is injected fairly.
        """
        metered = self.metered
        power = self.scenario.power
        frame = draw_operating_profiles(self.rng("operating-profiles"), metered, self.scenario)
        rng = self.rng("meter-roles")
        n = len(metered)
        suspended = metered["enterprise_id"].isin(self.suspension_orders["enterprise_id"]).to_numpy()
        role = np.full(n, "regular", dtype=object)
        free = np.flatnonzero(~suspended)
        no_capacity = rng.choice(
            free, size=min(len(free), scaled(power["data_quality"]["no_capacity"], self.scale)), replace=False
        )
        role[no_capacity] = "no_capacity"
        free = np.setdiff1d(free, no_capacity)
        flaky = rng.choice(
            free, size=min(len(free), scaled(round(power["flaky_share"] * n), 1)), replace=False
        )
        role[flaky] = "flaky"
        free = np.setdiff1d(free, flaky)
        role[free[rng.random(len(free)) < power["rough_share"]]] = "rough"
        role[suspended] = "rough"
        frame["role"] = role
        frame["has_suspension_history"] = suspended
        return frame

    @cached_property
    def no_capacity_enterprises(self) -> set[str]:
        """Metered enterprises without a safety profile on file (no contracted capacity known)."""
        profiles = self.operating_profiles
        return set(profiles.loc[profiles["role"] == "no_capacity", "enterprise_id"])

    @cached_property
    def cables(self) -> pd.DataFrame:
        """Monitored incoming cables, on the largest metered enterprises."""
        n = min(scaled(MONITORED_CABLES, self.scale, minimum=5), len(self.metered))
        largest = self.metered.sort_values(["capacity_kw", "enterprise_id"], ascending=[False, True]).head(n)
        rng = self.rng("cables")
        return pd.DataFrame(
            {
                "cable_id": [f"C{k:06d}" for k in range(1, n + 1)],
                "enterprise_id": largest["enterprise_id"].to_numpy(),
                "meter_index": largest.index.to_numpy(),
                "ambient_c": rng.uniform(*self.scenario.cable["ambient_c"], n),
                "rise_c": rng.uniform(*self.scenario.cable["rise_c"], n),
            }
        )

    @cached_property
    def suspension_orders(self) -> pd.DataFrame:
        """Suspension orders over four years; a snapshot shows those issued by its day."""
        rng = self.rng("suspension-orders")
        n = max(8, round(1_400 * self.scale))
        metered = self.metered
        enterprise = metered["enterprise_id"].to_numpy()[
            rng.choice(len(metered), size=n, replace=False)
            if n <= len(metered)
            else rng.integers(0, len(metered), n)
        ]
        issued = pd.Timestamp("2024-01-01", tz="Asia/Shanghai") + pd.to_timedelta(
            rng.integers(0, 4 * 365 * 24, size=n), unit="h"
        )
        effective_from = (issued + pd.Timedelta(days=1)).normalize()
        effective_to = effective_from + pd.to_timedelta(rng.integers(45, 200, size=n), unit="D")
        return pd.DataFrame(
            {
                "order_id": [f"TC{k:06d}" for k in range(1, n + 1)],
                "enterprise_id": enterprise,
                "issued_at": issued.tz_convert("UTC"),
                "effective_from": effective_from.tz_convert("UTC"),
                "effective_to": effective_to.tz_convert("UTC"),
                "reason": rng.choice(
                    ["major_hazard", "rectification", "environmental", "typhoon"],
                    size=n,
                    p=[0.3, 0.5, 0.15, 0.05],
                ),
            }
        )

    def suspended_on(self, day: dt.date) -> pd.DataFrame:
        """Orders in force at any moment of ``day``."""
        orders = self.suspension_orders
        start, end = day_start_utc(day), day_start_utc(day + dt.timedelta(days=1))
        return orders[(orders["effective_from"] < end) & (orders["effective_to"] > start)]

    @cached_property
    def teams(self) -> pd.DataFrame:
        rng = self.rng("teams")
        rows = []
        for team_type, spec in (("professional", PROFESSIONAL_TEAMS), ("social", SOCIAL_TEAMS)):
            for specialty, label, count in spec:
                for k in range(count):
                    town = int(rng.choice(len(TOWNS), p=TOWN_WEIGHTS)) if k else k
                    rows.append(
                        (
                            team_type,
                            specialty,
                            f"{TOWN_NAMES[town]}{label}" + (f"{k + 1}队" if count > 1 else ""),
                            town,
                        )
                    )
        frame = pd.DataFrame(rows, columns=["team_type", "specialty", "name", "town_idx"])
        n = len(frame)
        frame.insert(0, "team_id", [f"T{k:03d}" for k in range(1, n + 1)])
        frame["town_code"] = TOWN_CODES[frame["town_idx"]]
        frame["base_lat"] = jitter(rng, TOWN_LAT[frame["town_idx"]], 1.0)
        frame["base_lon"] = jitter(rng, TOWN_LON[frame["town_idx"]], 1.0)
        frame["members"] = np.where(
            frame["team_type"] == "social", rng.integers(15, 60, n), rng.integers(20, 45, n)
        )
        frame["vehicles"] = np.where(
            frame["team_type"] == "social", rng.integers(1, 6, n), rng.integers(3, 12, n)
        )
        frame["duty_phone"] = phones(rng, n)
        return frame

    @cached_property
    def rescuers(self) -> pd.DataFrame:
        teams = self.teams
        rng = self.rng("rescuers")
        team_idx = np.repeat(np.arange(len(teams)), teams["members"].to_numpy())
        n = len(team_idx)
        quals = {
            "fire": "firefighter",
            "medical": "paramedic",
            "hazmat": "hazmat_technician",
            "water_rescue": "water_rescuer",
            "mountain_rescue": "rope_rescuer",
            "general": "volunteer",
        }
        return pd.DataFrame(
            {
                "rescuer_id": [f"R{k:05d}" for k in range(1, n + 1)],
                "team_id": teams["team_id"].to_numpy()[team_idx],
                "name": person_names(rng, n),
                "id_number": id_numbers(rng, n),
                "phone": phones(rng, n),
                "gender": rng.choice(["M", "F"], size=n, p=[0.82, 0.18]),
                "qualification": [quals[s] for s in teams["specialty"].to_numpy()[team_idx]],
                "certified_until": [
                    dt.date(2026, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(-200, 1200, n)
                ],
                "base_lat": teams["base_lat"].to_numpy()[team_idx],
                "base_lon": teams["base_lon"].to_numpy()[team_idx],
            }
        )

    @cached_property
    def agencies(self) -> pd.DataFrame:
        rng = self.rng("agencies")
        n = 36
        town_idx = rng.choice(len(TOWNS), size=n, p=TOWN_WEIGHTS)
        return pd.DataFrame(
            {
                "agency_id": [f"AG{k:03d}" for k in range(1, n + 1)],
                "name": [
                    f"浙江{w}安全评价有限公司"
                    for w in (
                        a + b
                        for a, b in zip(
                            rng.choice(list("安信华正诚达恒远"), n),
                            rng.choice(list("科泰宏盛源通"), n),
                            strict=True,
                        )
                    )
                ],
                "licence_no": [f"APJ-(浙)-{x:03d}" for x in rng.integers(100, 999, n)],
                "licence_grade": rng.choice(["A", "B"], size=n, p=[0.3, 0.7]),
                "town_code": TOWN_CODES[town_idx],
                "legal_rep_name": person_names(rng, n),
            }
        )

    @cached_property
    def evaluators(self) -> pd.DataFrame:
        rng = self.rng("evaluators")
        n = 420
        return pd.DataFrame(
            {
                "evaluator_id": [f"EV{k:04d}" for k in range(1, n + 1)],
                "agency_id": self.agencies["agency_id"].to_numpy()[rng.integers(0, len(self.agencies), n)],
                "name": person_names(rng, n),
                "id_number": id_numbers(rng, n),
                "phone": phones(rng, n),
                "certificate_no": [f"S011033000110{x:06d}" for x in rng.integers(0, 10**6, n)],
                "certificate_level": rng.choice(
                    ["senior", "intermediate", "junior"], size=n, p=[0.2, 0.5, 0.3]
                ),
            }
        )

    @cached_property
    def guardian_codes(self) -> pd.DataFrame:
        rng = self.rng("guardian-codes")
        n = scaled(31_000, self.scale, minimum=50)
        town_idx = rng.choice(len(TOWNS), size=n, p=TOWN_WEIGHTS)
        site_types = next(c.allowed for c in get_feed("guardian_codes").columns if c.name == "site_type")
        site_type = rng.choice(
            list(site_types),  # the catalog's order: the shares below are in it
            size=n,
            p=[0.45, 0.2, 0.05, 0.02, 0.1, 0.03, 0.15],
        )
        ents = self.enterprises["enterprise_id"].to_numpy()
        return pd.DataFrame(
            {
                "code_id": [f"GC{k:06d}" for k in range(1, n + 1)],
                "site_type": site_type,
                "site_ref_id": np.where(site_type == "enterprise", ents[rng.integers(0, len(ents), n)], None),
                "town_code": TOWN_CODES[town_idx],
                "lat": jitter(rng, TOWN_LAT[town_idx], 4.0),
                "lon": jitter(rng, TOWN_LON[town_idx], 4.0),
                "guardian_name": person_names(rng, n),
                "guardian_phone": phones(rng, n),
                "issued_on": [
                    dt.date(2022, 3, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 1000, n)
                ],
            }
        )
