"""Reports for the audit questions of POLICIES.md, built from the database.

``build_report(engine, kind, site, start, end)`` gives a :class:`Report` (tables, charts,
summary figures and the audit chain head it was made from); ``render.render(report,
format)`` turns it into CSV, JSON or PDF bytes. Kinds:

* ``environment``: per room, the share of occupied time within the temperature and light
  limits, and every excursion (ROOM; 002 §1, 004 I.A);
* ``episodes``: the episode log with the fields of the NY regulation (002 §8) and North
  Colonie policy (004 I.B, II), the parent notification (002 §9, 004 I.C) and the verdict;
* ``students``: per student reference, episodes, school days, minutes and verdicts;
* ``district``: the Minnesota figures (003): incidents, students, students with 10 or more
  days, duration mode / median / mean and 5-minute buckets, injuries to students and staff,
  counts by school and room, and by quarter of the school year.

Each kind is built in its own module (report_environment, report_episodes,
report_district) from the read side's rows; what a report is lives in report_model.

The period is ``start`` to ``end`` inclusive, in the site's calendar (the default calendar
for the whole district); an episode belongs to the period it started in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from roomwatch.collector import audit
from roomwatch.collector.config import CollectorConfig
from roomwatch.compliance.context import Rulebook
from roomwatch.compliance.report_district import district
from roomwatch.compliance.report_environment import environment
from roomwatch.compliance.report_episodes import EPISODE_COLUMNS, episode_log, students
from roomwatch.compliance.report_model import (
    Built,
    Chart,
    Context,
    Report,
    ReportKind,
    ReportTable,
)
from roomwatch.core.calendar import SchoolCalendar

__all__ = ["EPISODE_COLUMNS", "Chart", "Report", "ReportKind", "ReportTable", "build_report"]


def _bounds(calendar: SchoolCalendar, start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    zone = calendar.zone
    return (
        datetime.combine(start, time(0), zone).astimezone(UTC),
        datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC),
    )


def build_report(
    engine: Engine,
    kind: ReportKind | str,
    site: str | None,
    start: date,
    end: date,
    config: CollectorConfig | None = None,
    now: datetime | None = None,
) -> Report:
    """Build report ``kind`` for ``site`` (None: every site) from ``start`` to ``end``
    (inclusive dates in the site's time zone). The audit chain head is read first, so every
    row the report shows was already covered by it."""
    kind = ReportKind(kind)
    config = config or CollectorConfig()
    now = now or datetime.now(UTC)
    head = audit.head_of(engine)
    calendar = config.calendar_for(site) if site else config.school_calendar
    since, until = _bounds(calendar, start, end)
    builder = _BUILDERS[kind]
    title, summary, tables, charts, notes = builder(
        Context(engine, config, Rulebook(engine, config), calendar, site, since, until, now)
    )
    where = f"site {site}" if site else "all sites"
    return Report(
        kind=kind,
        title=f"{title}: {where}, {start} to {end}",
        site=site,
        start=start,
        end=end,
        timezone=calendar.timezone,
        generated_at=now,
        audit_chain_head=head,
        summary=summary,
        tables=tables,
        charts=charts,
        notes=notes,
    )


_BUILDERS: dict[ReportKind, Callable[[Context], Built]] = {
    ReportKind.ENVIRONMENT: environment,
    ReportKind.EPISODES: episode_log,
    ReportKind.STUDENTS: students,
    ReportKind.DISTRICT: district,
}
