"""What episode verdicts are judged from, and which episodes need judging: the read side
of compliance/verdicts.py (the judging itself is the core's)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlmodel import Session

from roomwatch.collector.compliance_models import EpisodeVerdictRow
from roomwatch.collector.incidents import StoredIncident
from roomwatch.collector.models import (
    AlertRecord,
    AlertTransition,
    EpisodeRecord,
    EventRecord,
    IncidentRow,
    TelemetryRecord,
)
from roomwatch.collector.read.incident_records import incidents_of
from roomwatch.collector.read.records import (
    StoredAlert,
    StoredAlertStep,
    StoredEpisode,
    StoredEvent,
    StoredTelemetry,
    stored,
)


@dataclass(frozen=True, slots=True)
class VerdictRows:
    """Everything stored about some episodes, by episode id (steps by alert id)."""

    episodes: list[StoredEpisode]
    readings: dict[str, list[StoredTelemetry]]
    events: dict[str, list[StoredEvent]]
    alerts: dict[str, list[StoredAlert]]
    steps: dict[str, list[StoredAlertStep]]
    incidents: dict[str, StoredIncident]


def _by_episode(rows: Any, cls: type[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        found[row.episode_id].append(stored(cls, row))
    return found


def verdict_rows(engine: Engine, ids: Sequence[str]) -> VerdictRows:
    """The episodes ``ids`` with their readings, events, alerts (and their steps) and
    incident records, in a few queries."""
    with Session(engine) as session:

        def rows(model: Any, column: Any, values: Sequence[str]) -> Any:
            return session.execute(select(model).where(column.in_(values))).scalars()

        episodes = [
            stored(StoredEpisode, e) for e in rows(EpisodeRecord, EpisodeRecord.episode_id, ids)
        ]
        readings = _by_episode(
            rows(TelemetryRecord, TelemetryRecord.episode_id, ids), StoredTelemetry
        )
        events = _by_episode(rows(EventRecord, EventRecord.episode_id, ids), StoredEvent)
        alert_rows = list(rows(AlertRecord, AlertRecord.episode_id, ids))
        alerts = _by_episode(alert_rows, StoredAlert)
        alert_ids = [a.alert_id for a in alert_rows]
        steps: dict[str, list[StoredAlertStep]] = defaultdict(list)
        if alert_ids:
            for s in rows(AlertTransition, AlertTransition.alert_id, alert_ids):
                steps[s.alert_id].append(stored(StoredAlertStep, s))
    return VerdictRows(episodes, readings, events, alerts, steps, incidents_of(engine, ids))


def episodes_to_judge(engine: Engine, since: datetime, pending: str) -> list[str]:
    """The episodes ended since ``since`` whose kept verdict is missing, has outcome
    ``pending``, or is older than the last save of their record."""
    e, v = EpisodeRecord.__table__.c, EpisodeVerdictRow.__table__.c  # type: ignore[attr-defined]
    i = IncidentRow.__table__.c  # type: ignore[attr-defined]
    query = (
        select(e.episode_id)
        .join(EpisodeVerdictRow, v.episode_id == e.episode_id, isouter=True)
        .join(IncidentRow, i.episode_id == e.episode_id, isouter=True)
        .where(
            e.ended_at >= since,
            or_(v.episode_id.is_(None), v.outcome == pending, i.updated_at > v.computed_at),
        )
    )
    with Session(engine) as session:
        return [row[0] for row in session.execute(query)]


def ended_unjudged_before(engine: Engine, cutoff: datetime) -> list[str]:
    """The ended episodes started before ``cutoff`` that have no kept verdict."""
    e, v = EpisodeRecord.__table__.c, EpisodeVerdictRow.__table__.c  # type: ignore[attr-defined]
    query = (
        select(e.episode_id)
        .join(EpisodeVerdictRow, v.episode_id == e.episode_id, isouter=True)
        .where(e.started_at < cutoff, e.ended_at.is_not(None), v.episode_id.is_(None))
    )
    with Session(engine) as session:
        return [row[0] for row in session.execute(query)]


def kept_verdict(engine: Engine, episode_id: str) -> dict[str, Any] | None:
    """The body of the verdict last kept for the episode, if any."""
    with Session(engine) as session:
        row = session.get(EpisodeVerdictRow, episode_id)
        return dict(row.body) if row else None
