"""When the paperwork of an episode is due, and which students reached the frequent-use
count. Pure: plain data in, times and conditions out.

* NOTIFY (POLICIES.md): parents are told immediately (000, with the profile's grace),
  by the end of the school day (002 §9) or within n school days (004 I.C), from the start
  of the episode (the moment the student was placed in the room);
* RECORD: the incident record is complete by the end of the school day on which the
  episode ended (a Roomwatch default: 002 §8 and 004 I.B ask for the record without a
  deadline; the end of the school day is when staff are still there to write it);
* PATTERN: a student's N-th school day with an episode in one school year (N from the
  profile, 10 by default: 003, MN 125A.0942 subd. 2(d));
* REPEAT: an episode that begins within the profile's ``repeat_window_h`` of the end of
  an earlier one ("repeated episodes ... during any three-hour period", 003 App. B, IL), in
  the same room (what the sensors can tell) or of the same student (once the incident
  records name one). A room repeat whose two records name different students is none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


@dataclass(frozen=True, slots=True)
class PastEpisode:
    """One stored episode, for the repeat rule (``student_ref`` from its record, if any)."""

    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    student_ref: str | None = None

    @property
    def last_seen(self) -> datetime:
        """The end, or the start while it is still open."""
        return self.ended_at if self.ended_at is not None else self.started_at


@dataclass(frozen=True, slots=True)
class Repeat:
    """``episode`` began ``gap`` after ``earlier`` (its end) and within the window."""

    episode: PastEpisode
    earlier: PastEpisode
    gap: timedelta
    window_h: float
    same_student: bool  # False: the same room, the student unknown on one record or both


def repeats(
    episodes: Iterable[PastEpisode], window_h: Callable[[PastEpisode], float | None]
) -> list[Repeat]:
    """Every episode that began within ``window_h(episode)`` hours (None: no rule there) of
    the end of the episode before it in its room or of its student. Of the two, the later
    earlier one is cited. Episodes of one room (or one student) never overlap, so the one
    just before is the only one that can be the closest."""
    ordered = sorted(episodes, key=lambda e: (e.started_at, e.episode_id))
    last_in_room: dict[tuple[str, str], PastEpisode] = {}
    last_of_student: dict[str, PastEpisode] = {}
    found = []
    for e in ordered:
        hours = window_h(e)
        if hours is not None:
            candidates = []
            by_room = last_in_room.get((e.site, e.room))
            if by_room is not None and not _different_students(by_room, e):
                candidates.append((by_room, _same_student(by_room, e)))
            by_student = last_of_student.get(e.student_ref) if e.student_ref else None
            if by_student is not None:
                candidates.append((by_student, True))
            within = [
                (c, same)
                for c, same in candidates
                # (a negative gap, an overlap, is stored data gone wrong: counted too)
                if e.started_at - c.last_seen <= timedelta(hours=hours)
            ]
            if within:
                earlier, same = max(within, key=lambda x: (x[0].last_seen, x[1]))
                gap = max(timedelta(0), e.started_at - earlier.last_seen)
                found.append(Repeat(e, earlier, gap, hours, same))
        last_in_room[(e.site, e.room)] = e
        if e.student_ref:
            last_of_student[e.student_ref] = e
    return found


def _same_student(a: PastEpisode, b: PastEpisode) -> bool:
    return a.student_ref is not None and a.student_ref == b.student_ref


def _different_students(a: PastEpisode, b: PastEpisode) -> bool:
    return (
        a.student_ref is not None and b.student_ref is not None and a.student_ref != b.student_ref
    )
