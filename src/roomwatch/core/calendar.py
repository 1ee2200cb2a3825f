"""A site's school calendar, and the arithmetic deadlines need. Pure.

Parents must be told "by the end of the school day" (seed 002 §9) or "within one (1) school
day" (004 I.C); Minnesota counts "10 or more school days" with a restrictive procedure in a
school year (003, 125A.0942 subd. 2(d)) and its school year runs July 1 to June 30 (003).
Those words need to know which days are school days, when a school day ends and in which
time zone: that is this calendar, configured per site (collector config, docs/compliance.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The longest run of non-school days we search through before calling the calendar broken
#: (a summer break is ~80 days; a year and a half covers any real calendar).
MAX_SEARCH_DAYS = 550


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAY_INDEX = {day: i for i, day in enumerate(Weekday)}


class DateRange(BaseModel):
    """A break (winter, spring, summer): every day from ``first`` to ``last``, inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: date
    last: date
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.last < self.first:
            raise ValueError(f"break {self.name or self.first}: last is before first")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


class SchoolCalendar(BaseModel):
    """School days, holidays and breaks, when the school day ends, and the time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field("UTC", description="IANA zone of the site, e.g. America/Chicago.")
    school_days: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        min_length=1,
        description="Weekdays that are school days unless a holiday or break says otherwise.",
    )
    day_end: time = Field(time(15, 30), description="When the school day ends (local time).")
    holidays: list[date] = Field(default_factory=list, description="Single days off.")
    breaks: list[DateRange] = Field(default_factory=list, description="Runs of days off.")
    extra_school_days: list[date] = Field(
        default_factory=list, description="Make-up days on a weekday not in school_days."
    )
    school_year_starts: Annotated[
        str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    ] = Field("07-01", description="MM-DD the school year begins (MN: July 1, seed 003).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as America/New_York)"
            ) from None
        return value

    @field_validator("day_end")
    @classmethod
    def _naive_end(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("day_end is a local time of day (no zone): the calendar has one")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _weekdays(self) -> frozenset[int]:
        return frozenset(_WEEKDAY_INDEX[d] for d in self.school_days)

    @cached_property
    def _days_off(self) -> frozenset[date]:
        return frozenset(self.holidays)

    # ------------------------------------------------------------------ days

    def local_date(self, at: datetime) -> date:
        """The site's calendar date at instant ``at``."""
        return _aware(at).astimezone(self.zone).date()

    def is_school_day(self, day: date) -> bool:
        if day in self.extra_school_days:
            return True
        if day.weekday() not in self._weekdays or day in self._days_off:
            return False
        return not any(day in b for b in self.breaks)

    def day_end_at(self, day: date) -> datetime:
        """When school day ``day`` ends, in UTC (DST handled by the zone)."""
        return datetime.combine(day, self.day_end, self.zone).astimezone(UTC)

    def next_school_day(self, day: date) -> date:
        """The first school day after ``day``."""
        for n in range(1, MAX_SEARCH_DAYS):
            candidate = day + timedelta(days=n)
            if self.is_school_day(candidate):
                return candidate
        raise ValueError(f"no school day within {MAX_SEARCH_DAYS} days after {day}")

    def school_day_of(self, at: datetime) -> date:
        """The school day something at ``at`` belongs to for deadlines: that day if it is a
        school day and school has not ended, else the next school day."""
        local = _aware(at).astimezone(self.zone)
        day = local.date()
        if self.is_school_day(day) and local.time() < self.day_end:
            return day
        return self.next_school_day(day)

    def add_school_days(self, day: date, n: int) -> date:
        """The ``n``-th school day after ``day`` (``n`` = 0: ``day`` itself)."""
        for _ in range(n):
            day = self.next_school_day(day)
        return day

    def school_days_between(self, first: date, last: date) -> int:
        """School days from ``first`` to ``last``, inclusive."""
        return sum(
            1
            for n in range((last - first).days + 1)
            if self.is_school_day(first + timedelta(days=n))
        )

    # ------------------------------------------------------------- deadlines

    def end_of_school_day(self, at: datetime) -> datetime:
        """ "By the end of the school day" (002 §9): the end of the school day of ``at``."""
        return self.day_end_at(self.school_day_of(at))

    def within_school_days(self, at: datetime, n: int) -> datetime:
        """ "Within n school day(s)" (004 I.C): the end of the n-th school day after the
        school day of ``at``."""
        return self.day_end_at(self.add_school_days(self.school_day_of(at), n))

    # ----------------------------------------------------------- school year

    def school_year_of(self, day: date) -> tuple[date, date]:
        """First and last day of the school year ``day`` is in (MN: July 1 - June 30)."""
        month, dom = (int(p) for p in self.school_year_starts.split("-"))
        start = _safe_date(day.year, month, dom)
        if day < start:
            start = _safe_date(day.year - 1, month, dom)
        following = _safe_date(start.year + 1, month, dom)
        return start, following - timedelta(days=1)

    def school_year_label(self, day: date) -> str:
        start, end = self.school_year_of(day)
        return f"{start.year}-{str(end.year)[-2:]}" if start.year != end.year else str(start.year)


def _safe_date(year: int, month: int, day: int) -> date:
    """29 February in a common year is 1 March (so "02-29" still works)."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28) + timedelta(days=1)


def _aware(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone: calendar arithmetic needs one")
    return at
