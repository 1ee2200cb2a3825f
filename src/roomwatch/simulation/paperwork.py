"""The paperwork of a generated school day (school_day.py): what the rules ask of staff
after each use, which nobody does in a generated day, so each is an alert that must come
on time (parents not told, the record not complete, a repeat use)."""

from __future__ import annotations

from datetime import datetime, timedelta

from roomwatch.collector.config import ComplianceSettings
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.deadlines import (
    describe_notification_rule,
    notification_deadline,
    record_deadline,
)
from roomwatch.core.policy import PolicyProfile
from roomwatch.core.wire import AlertType
from roomwatch.simulation.day_record import CalmEpisode, Incident, Timing, expect
from roomwatch.simulation.engine import SCENARIO_START
from roomwatch.simulation.expect import clock


def paperwork(
    profiles: dict[str, PolicyProfile],
    calm: list[CalmEpisode],
    incidents: list[Incident],
    day_s: float,
    timing: Timing,
) -> tuple[Incident, ...]:
    """The deadline alerts the day's uses must raise before it ends, since no staff do the
    paperwork: parents not told (the profile's deadline), the record not complete (the end
    of the school day), and a use within the profile's repeat window of the room's last
    one (Illinois: the written evaluation). Each is raised at the collector's next check."""
    calendar = SchoolCalendar()  # the simulation's (engine.Options): UTC, ends 15:30
    check_s = ComplianceSettings().check_every_s
    slack = check_s + timing.edge_s
    uses = sorted(
        [(c.room, c.start_s, c.exit_s) for c in calm]
        + [(i.room, *i.episode) for i in incidents if i.episode is not None]
    )
    found: list[Incident] = []

    def due(room: str, kind: AlertType, at: datetime, what: str, why: str) -> None:
        at_s = (at - SCENARIO_START).total_seconds()
        if at_s + slack <= day_s:  # judged only when the day lasts past its window
            found.append(Incident(kind, room, at_s, at_s, what, (expect(kind, at_s, slack, why),)))

    last_exit: dict[str, float] = {}
    for room, start_s, exit_s in uses:
        profile = profiles[room]
        start = SCENARIO_START + timedelta(seconds=start_s)
        rule = profile.parent_notification
        due(
            room,
            AlertType.PARENT_NOTIFICATION_OVERDUE,
            notification_deadline(rule, calendar, start),
            f"parents of the {clock(start_s)} episode not told",
            describe_notification_rule(rule),
        )
        due(
            room,
            AlertType.RECORD_INCOMPLETE,
            record_deadline(calendar, SCENARIO_START + timedelta(seconds=exit_s)),
            f"record of the {clock(start_s)} episode not filled in",
            "by the end of the school day",
        )
        window_h = profile.reporting.repeat_window_h
        if (
            window_h is not None
            and room in last_exit
            and start_s - last_exit[room] <= window_h * 3600
        ):
            due(
                room,
                AlertType.FREQUENT_USE,
                start,
                f"the {clock(start_s)} episode within {window_h:g} h of the last one",
                f"reporting.repeat_window_h ({window_h:g} h), at the next check",
            )
        last_exit[room] = exit_s
    return tuple(found)
