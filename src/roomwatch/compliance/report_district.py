"""The district report: the Minnesota figures (seed 003): incidents, students, students with
10 or more days, duration mode / median / mean and 5-minute buckets, injuries to students
and staff, counts by school and room, and by quarter of the school year."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from roomwatch.compliance.report_model import (
    Built,
    Chart,
    Context,
    ReportEpisode,
    ReportTable,
    share,
)
from roomwatch.core import durations
from roomwatch.core.calendar import SchoolCalendar

Groups = dict[Any, list[ReportEpisode]]


def quarter(calendar: SchoolCalendar, day: date) -> str:
    start, _ = calendar.school_year_of(day)
    q = ((day.month - start.month) % 12) // 3 + 1
    return f"{calendar.school_year_label(day)} Q{q}"


def _students(group: Iterable[ReportEpisode]) -> int:
    return len({e.record.student_ref for e in group if e.record.student_ref})


def _minutes(group: Iterable[ReportEpisode]) -> float:
    return round(sum(e.duration_s or 0.0 for e in group) / 60, 2)


def summary_of(
    c: Context, every: list[ReportEpisode], episodes: list[ReportEpisode], threshold: int
) -> dict[str, Any]:
    """The report's figures over the ended episodes (``every``: those still open too)."""
    days: dict[str, set[date]] = defaultdict(set)
    count: Counter[str] = Counter()
    for e in episodes:
        ref = e.record.student_ref
        if ref:
            days[ref].add(c.local(e).local_date(e.started_at))
            count[ref] += 1
    frequent = {ref for ref, d in days.items() if len(d) >= threshold}
    return {
        "incidents": len(episodes),
        "open_episodes_excluded": len(every) - len(episodes),
        "students": len(days),
        "incidents_without_student_ref": sum(1 for e in episodes if not e.record.student_ref),
        f"students_with_{threshold}_or_more_days": len(frequent),
        f"incidents_of_students_with_{threshold}_or_more_days": sum(count[r] for r in frequent),
        "student_injuries": sum(1 for e in episodes if e.record.student_injury),
        "staff_injuries": sum(1 for e in episodes if e.record.staff_injury),
        "injuries_not_recorded": sum(
            1 for e in episodes if e.record.student_injury is None or e.record.staff_injury is None
        ),
    }


def groups(c: Context, episodes: list[ReportEpisode]) -> tuple[Groups, Groups, Groups]:
    """The episodes by site, by (site, room) and by quarter of the school year."""
    by_site: Groups = defaultdict(list)
    by_room: Groups = defaultdict(list)
    by_quarter: Groups = defaultdict(list)
    for e in episodes:
        by_site[e.site].append(e)
        by_room[(e.site, e.room)].append(e)
        by_quarter[quarter(c.local(e), c.local(e).local_date(e.started_at))].append(e)
    return by_site, by_room, by_quarter


def district(c: Context) -> Built:
    every = c.episodes()
    episodes = [e for e in every if e.ended_at is not None]
    threshold = c.threshold()
    figures = durations.figures(e.duration_s or 0.0 for e in episodes)
    summary = summary_of(c, every, episodes, threshold) | {"duration": figures.as_dict()}
    by_site, by_room, by_quarter = groups(c, episodes)
    notes = [
        "Figures as in the Minnesota legislative report (seed 003): incidents are ended "
        "episodes that started in the period; durations in whole minutes rounded up "
        "(mode: the smallest of equally frequent values); injuries count incidents with an "
        f"injury recorded. Students with {threshold} or more days count distinct local dates "
        "with an episode within the period (for the 125A.0942 subd. 2(d) rule, run the report "
        "for the school year, July 1 - June 30). Roomwatch sees room episodes only: physical "
        "holds must be added from other records."
    ]
    return (
        "District report",
        summary,
        _tables(figures, by_site, by_room, by_quarter),
        _charts(figures, by_site, by_quarter),
        notes,
    )


def _tables(
    figures: durations.DurationFigures, by_site: Groups, by_room: Groups, by_quarter: Groups
) -> list[ReportTable]:
    return [
        ReportTable(
            id="durations",
            title="Length of incidents (whole minutes, rounded up)",
            columns=["minutes", "incidents", "share"],
            rows=[[label, n, share(n, figures.count)] for label, n in figures.buckets.items()],
        ),
        ReportTable(
            id="by_school",
            title="By school (site)",
            columns=["site", "incidents", "students", "minutes"],
            rows=[[s, len(g), _students(g), _minutes(g)] for s, g in sorted(by_site.items())],
        ),
        ReportTable(
            id="by_room",
            title="By room",
            columns=["site", "room", "incidents", "students", "minutes"],
            rows=[
                [s, r, len(g), _students(g), _minutes(g)] for (s, r), g in sorted(by_room.items())
            ],
        ),
        ReportTable(
            id="by_quarter",
            title="Students and incidents by quarter of the school year",
            columns=["quarter", "incidents", "students"],
            rows=[[q, len(g), _students(g)] for q, g in sorted(by_quarter.items())],
        ),
    ]


def _charts(figures: durations.DurationFigures, by_site: Groups, by_quarter: Groups) -> list[Chart]:
    quarters = sorted(by_quarter)
    return [
        Chart(
            id="durations",
            title="Length of incidents",
            x_label="minutes",
            y_label="incidents",
            labels=list(figures.buckets),
            series={"incidents": [float(n) for n in figures.buckets.values()]},
        ),
        Chart(
            id="by_school",
            title="Incidents by school",
            x_label="site",
            y_label="incidents",
            labels=sorted(by_site),
            series={"incidents": [float(len(by_site[s])) for s in sorted(by_site)]},
        ),
        Chart(
            id="by_quarter",
            title="Incidents and students by quarter",
            x_label="quarter",
            y_label="count",
            labels=quarters,
            series={
                "incidents": [float(len(by_quarter[q])) for q in quarters],
                "students": [float(_students(by_quarter[q])) for q in quarters],
            },
        ),
    ]
