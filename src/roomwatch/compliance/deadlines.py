"""The deadline check: which episodes are past their paperwork deadlines, and which students
reached the frequent-use count (core/deadlines.py has the rules), as alert conditions the
collector reconciles on its alert desk every ``compliance.check_every_s``.

* ``parent_notification_overdue``: nobody recorded telling the parents by the deadline;
  resolved when someone does;
* ``record_incomplete``: fields of the incident record still empty at the end of the school
  day the episode ended; resolved when the record is complete;
* ``frequent_use``: a student's N-th school day with an episode in this school year (N from
  the profile, 10 by default: seed 003, MN 125A.0942 subd. 2(d)); open until acknowledged
  and the school year ends;
* ``frequent_use`` (subject ``repeat:<checkpoint>``): an episode that began within the
  profile's ``repeat_window_h`` of the end of an earlier one in its room or of its student
  (Illinois: 3 h, the written evaluation; seed 003 App. B, IL), citing the earlier one; open
  while the later episode is within the look-back, resolved at once if the records show
  two different students.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.read.deadline_rows import episode_spans_since, student_episodes_since
from roomwatch.collector.read.incident_records import recent_episodes_with_records
from roomwatch.collector.service import Collector
from roomwatch.compliance.context import Rulebook
from roomwatch.core import alert_types, deadlines
from roomwatch.core.policy.model import REPEAT_WINDOW_MAX_H
from roomwatch.core.rules import Condition, OpenAlert
from roomwatch.core.wire import AlertType, Severity

COMPLIANCE_TYPES: frozenset[AlertType] = alert_types.owned_by(alert_types.Owner.COMPLIANCE)

Found = dict[tuple[str, str], list[Condition]]


class DeadlineCheck:
    """Callable as the collector's periodic check: ``check(now)`` -> conditions per room."""

    def __init__(
        self,
        engine: Engine,
        config: CollectorConfig,
        open_alerts: Callable[[], Iterable[OpenAlert]] = list,
    ) -> None:
        self.engine = engine
        self.config = config
        self.open_alerts = open_alerts

    def __call__(self, now: datetime) -> Found:
        book = Rulebook(self.engine, self.config)
        found: Found = defaultdict(list)
        self._paperwork(now, book, found)
        self._frequent_use(now, book, found)
        self._repeats(now, book, found)
        return dict(found)

    def _paperwork(self, now: datetime, book: Rulebook, found: Found) -> None:
        since = now - timedelta(days=self.config.compliance.lookback_days)
        # Episodes whose alerts are open stay checked past the look-back, so an alert is
        # only ever resolved by the paperwork being done.
        still_open = [
            a.episode_id
            for a in self.open_alerts()
            if a.type in COMPLIANCE_TYPES and a.episode_id is not None
        ]
        for episode, record in recent_episodes_with_records(self.engine, since, still_open):
            rules = book.for_room(episode.site, episode.room)
            started = episode.started_at
            key = (episode.site, episode.room)
            due = deadlines.notification_deadline(
                rules.profile.parent_notification, rules.calendar, started
            )
            if record.parent_notified_at is None and now > due:
                rule = deadlines.describe_notification_rule(rules.profile.parent_notification)
                found[key].append(
                    Condition(
                        AlertType.PARENT_NOTIFICATION_OVERDUE,
                        Severity.WARNING,
                        f"Parents of the student in episode {episode.episode_id} have not been "
                        f"recorded as notified; the profile asks {rule} "
                        f"(due {due.isoformat(timespec='minutes')}).",
                        episode.episode_id,
                    )
                )
            if episode.ended_at is None:
                continue
            missing = record.missing()
            due = deadlines.record_deadline(rules.calendar, episode.ended_at)
            if missing and now > due:
                found[key].append(
                    Condition(
                        AlertType.RECORD_INCOMPLETE,
                        Severity.WARNING,
                        f"The record of episode {episode.episode_id} is incomplete "
                        f"({len(missing)} field(s) empty: {', '.join(missing[:4])}"
                        f"{', ...' if len(missing) > 4 else ''}).",
                        episode.episode_id,
                    )
                )

    def _frequent_use(self, now: datetime, book: Rulebook, found: Found) -> None:
        by_student: dict[str, list[tuple[str, str, str, datetime]]] = defaultdict(list)
        for e in student_episodes_since(self.engine, now - timedelta(days=400)):
            assert e.student_ref is not None  # selected so
            by_student[e.student_ref].append((e.episode_id, e.site, e.room, e.started_at))
        for ref, episodes in by_student.items():
            latest = max(episodes, key=lambda e: e[3])
            rules = book.for_room(latest[1], latest[2])  # the rules where the student is now
            threshold = rules.profile.reporting.frequent_use_school_days
            if threshold is None:
                continue
            this_year = rules.calendar.school_year_label(rules.calendar.local_date(now))
            where = {e[0]: (e[1], e[2]) for e in episodes}
            reached = deadlines.frequent_use(
                (deadlines.StudentEpisode(ref, e[0], e[3]) for e in episodes),
                rules.calendar,
                threshold,
            )
            for hit in reached:
                if hit.school_year != this_year:
                    continue
                found[where[hit.episode_id]].append(
                    Condition(
                        AlertType.FREQUENT_USE,
                        Severity.WARNING,
                        f"Student {ref} has had episodes on {hit.days} school days in "
                        f"{hit.school_year} (the {threshold}th on {hit.reached_on}): "
                        "review the plan (MN 125A.0942 subd. 2(d); 004 I.B CSE referral).",
                        hit.episode_id,
                        subject=f"student:{ref}",
                    )
                )

    def _repeats(self, now: datetime, book: Rulebook, found: Found) -> None:
        since = now - timedelta(days=self.config.compliance.lookback_days)
        # The earlier episode of a repeat may start before the look-back.
        rows = episode_spans_since(self.engine, since - timedelta(hours=REPEAT_WINDOW_MAX_H))
        episodes = [
            deadlines.PastEpisode(
                e.episode_id, e.site, e.room, e.started_at, e.ended_at, e.student_ref or None
            )
            for e in rows
        ]

        def window_h(e: deadlines.PastEpisode) -> float | None:
            return book.for_room(e.site, e.room).profile.reporting.repeat_window_h

        for hit in deadlines.repeats(episodes, window_h):
            e, earlier = hit.episode, hit.earlier
            if e.started_at < since:
                continue
            profile = book.for_room(e.site, e.room).profile
            checkpoint_id = profile.reporting.repeat_checkpoint
            assert checkpoint_id is not None  # the model requires it with repeat_window_h
            whose = (
                "of the same student (incident records)"
                if hit.same_student
                else f"in {earlier.room}"
            )
            verb = "ended" if earlier.ended_at else "started"
            found[(e.site, e.room)].append(
                Condition(
                    AlertType.FREQUENT_USE,
                    Severity.WARNING,
                    f"Episode {e.episode_id} began {_minutes(hit.gap)} after episode "
                    f"{earlier.episode_id} {whose} {verb}: repeated within {hit.window_h:g} h. "
                    f"{profile.checkpoint(checkpoint_id).action}",
                    e.episode_id,
                    subject=f"repeat:{checkpoint_id}",
                )
            )


def _minutes(gap: timedelta) -> str:
    minutes = gap.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def attach(collector: Collector, config: CollectorConfig) -> None:
    """Register the deadline check on a collector (done by ``roomwatch collector``)."""
    check = DeadlineCheck(
        collector.store.engine, config, lambda: list(collector.desk.open.values())
    )
    collector.add_check(check, COMPLIANCE_TYPES, config.compliance.check_every_s)
