"""When the paperwork of an episode is due, and which students reached the frequent-use
count. Pure: plain data in, times and conditions out.

* NOTIFY (POLICIES.md): parents are told immediately (000, with the profile's grace),
  by the end of the school day (002 §9) or within n school days (004 I.C), from the start
  of the episode (the moment the student was placed in the room);
* RECORD: the incident record is complete by the end of the school day on which the
  episode ended (a Roomwatch default: 002 §8 and 004 I.B ask for the record without a
  deadline; the end of the school day is when staff are still there to write it);
* PATTERN: a student's N-th school day with an episode in one school year (N from the
  profile, 10 by default: 003, MN 125A.0942 subd. 2(d)).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.policy.model import NotificationDeadline, ParentNotification


def notification_deadline(
    rule: ParentNotification, calendar: SchoolCalendar, started_at: datetime
) -> datetime:
    """When the parents of a student placed in the room at ``started_at`` must have been told."""
    if rule.deadline is NotificationDeadline.IMMEDIATELY:
        return started_at + timedelta(minutes=rule.immediate_grace_min)
    if rule.deadline is NotificationDeadline.END_OF_SCHOOL_DAY:
        return calendar.end_of_school_day(started_at)
    assert rule.school_days is not None  # the model requires it with within_school_days
    return calendar.within_school_days(started_at, rule.school_days)


def describe_notification_rule(rule: ParentNotification) -> str:
    if rule.deadline is NotificationDeadline.IMMEDIATELY:
        return f"immediately (within {rule.immediate_grace_min:g} min)"
    if rule.deadline is NotificationDeadline.END_OF_SCHOOL_DAY:
        return "by the end of the school day"
    days = rule.school_days or 1
    return f"within {days} school day{'s' if days != 1 else ''}"


def record_deadline(calendar: SchoolCalendar, ended_at: datetime) -> datetime:
    """When the incident record of an episode that ended at ``ended_at`` must be complete."""
    return calendar.end_of_school_day(ended_at)


@dataclass(frozen=True, slots=True)
class StudentEpisode:
    """One episode of a known student (for the frequent-use count)."""

    student_ref: str
    episode_id: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class FrequentUse:
    """A student reached ``threshold`` days with an episode in a school year."""

    student_ref: str
    school_year: str
    threshold: int
    episode_id: str  # the first episode of the threshold-th day
    reached_on: date
    days: int  # days with an episode so far in that school year


def frequent_use(
    episodes: Iterable[StudentEpisode], calendar: SchoolCalendar, threshold: int
) -> list[FrequentUse]:
    """Every student and school year in which the student had episodes on at least
    ``threshold`` distinct days (local dates; a day the calendar calls a holiday still
    counts, since the student was in school that day)."""
    days: dict[tuple[str, str], dict[date, StudentEpisode]] = {}
    for e in sorted(episodes, key=lambda e: e.started_at):
        day = calendar.local_date(e.started_at)
        key = (e.student_ref, calendar.school_year_label(day))
        days.setdefault(key, {}).setdefault(day, e)  # the day's first episode
    found = []
    for (student, year), by_day in sorted(days.items()):
        if len(by_day) >= threshold:
            day = sorted(by_day)[threshold - 1]
            found.append(
                FrequentUse(student, year, threshold, by_day[day].episode_id, day, len(by_day))
            )
    return found
