"""China's statutory holidays and adjusted working days (调休), read from the dbt seed ``calendar_days``.

The warehouse compares like days with the same seed, so the simulated factories rest on the days the
rules call holidays and work the weekends they call working days. A date's kind:

- ``holiday``: a statutory holiday of the seed;
- ``working_day``: an adjusted working day of the seed (a Saturday or Sunday worked instead of a
  holiday), or any other Monday to Friday;
- ``saturday`` / ``sunday``: any other weekend day.

Dates outside the seed's years get the weekday rule only.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

SEED_PATH = Path(__file__).resolve().parents[3] / "dbt_project" / "seeds" / "calendar_days.csv"

DayKind = Literal["holiday", "working_day", "saturday", "sunday"]
SPRING_FESTIVAL = "Spring Festival"
NATIONAL_DAY = "National Day"


@dataclass(frozen=True)
class CalendarDay:
    day_kind: str  # holiday | working_day, as in the seed
    name: str


@dataclass(frozen=True)
class HolidayCalendar:
    days: dict[dt.date, CalendarDay]

    def kind(self, day: dt.date) -> DayKind:
        """The calendar kind of ``day`` (see the module's docstring)."""
        listed = self.days.get(day)
        if listed is not None:
            return "holiday" if listed.day_kind == "holiday" else "working_day"
        weekday = day.weekday()
        if weekday == 5:
            return "saturday"
        if weekday == 6:
            return "sunday"
        return "working_day"

    def name(self, day: dt.date) -> str | None:
        listed = self.days.get(day)
        return listed.name if listed else None

    def holidays_named(self, word: str, year: int) -> list[dt.date]:
        """The statutory holidays of ``year`` whose name contains ``word`` (e.g. "Spring Festival")."""
        return sorted(
            d for d, c in self.days.items() if d.year == year and c.day_kind == "holiday" and word in c.name
        )

    def spring_festival(self, year: int) -> tuple[dt.date, dt.date] | None:
        """First and last statutory holiday of ``year``'s Spring Festival, if the seed has that year."""
        days = self.holidays_named(SPRING_FESTIVAL, year)
        return (days[0], days[-1]) if days else None


def read_calendar(path: Path = SEED_PATH) -> HolidayCalendar:
    """The seed as a calendar; a seed that is missing or malformed names itself and what to do."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the holiday calendar seed {path} is missing: the simulator's factories follow it "
            "(restore dbt_project/seeds/calendar_days.csv)"
        ) from None
    days = {}
    for number, row in enumerate(rows, start=2):
        kind = row.get("day_kind")
        if kind not in ("holiday", "working_day"):
            raise ValueError(f"{path}, line {number}: day_kind {kind!r} is neither holiday nor working_day")
        days[dt.date.fromisoformat(row["calendar_date"])] = CalendarDay(kind, row.get("name") or "")
    return HolidayCalendar(days)


@lru_cache(maxsize=1)
def holiday_calendar() -> HolidayCalendar:
    """The repository's calendar seed, read once per process."""
    return read_calendar()


def day_kind(day: dt.date) -> DayKind:
    """``holiday``, ``working_day`` (adjusted working days included), ``saturday`` or ``sunday``."""
    return holiday_calendar().kind(day)
