"""Incident records as the read side hands them out: the public way to load them (the ORM
rows and their conversion stay in the collector)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, or_, select
from sqlmodel import Session

from roomwatch.collector.incidents import (
    SUBJECT_PREFIX,
    StoredIncident,
    stored_incident,
    to_record,
)
from roomwatch.collector.models import AuditEntry, EpisodeRecord, IncidentRow
from roomwatch.collector.read.records import StoredAuditEntry, StoredEpisode, stored
from roomwatch.core.incident import IncidentRecord


def incidents_of(engine: Engine, episode_ids: Iterable[str]) -> dict[str, StoredIncident]:
    """The saved records of these episodes (episodes without one are left out)."""
    ids = list(episode_ids)
    with Session(engine) as session:
        rows = session.execute(
            select(IncidentRow).where(IncidentRow.episode_id.in_(ids))  # type: ignore[attr-defined]
        ).scalars()
        return {r.episode_id: stored_incident(r) for r in rows}


def every_incident(engine: Engine) -> dict[str, StoredIncident]:
    """Every saved record, by episode id."""
    with Session(engine) as session:
        rows = session.execute(select(IncidentRow)).scalars()
        return {r.episode_id: stored_incident(r) for r in rows}


def recent_episodes_with_records(
    engine: Engine, since: datetime, also: Iterable[str] = ()
) -> list[tuple[StoredEpisode, IncidentRecord]]:
    """The episodes started since ``since``, and those named in ``also``, with records."""
    return episodes_with_records(
        engine,
        or_(
            EpisodeRecord.started_at >= since,  # type: ignore[arg-type]
            EpisodeRecord.episode_id.in_(list(also)),  # type: ignore[attr-defined]
        ),
    )


def episodes_with_records(
    engine: Engine, where: ColumnElement[bool], ordered: bool = False
) -> list[tuple[StoredEpisode, IncidentRecord]]:
    """The episodes matching ``where`` (on the ``episode`` table) with their records (an
    empty one where none was saved), by start time if ``ordered``. For the read side's own
    modules: callers outside it ask a function that says what it selects."""
    query = (
        select(EpisodeRecord, IncidentRow)
        .join(IncidentRow, IncidentRow.episode_id == EpisodeRecord.episode_id, isouter=True)  # type: ignore[arg-type]
        .where(where)
    )
    if ordered:
        query = query.order_by(EpisodeRecord.started_at, EpisodeRecord.episode_id)  # type: ignore[arg-type]
    with Session(engine) as session:
        return [
            (stored(StoredEpisode, e), to_record(row) if row is not None else IncidentRecord())
            for e, row in session.execute(query).all()
        ]


def records_of_student(engine: Engine, ref: str) -> list[tuple[StoredEpisode, StoredIncident]]:
    """Every saved record naming student ``ref``, with its episode, by start time."""
    with Session(engine) as session:
        rows = session.execute(
            select(IncidentRow, EpisodeRecord)
            .join(EpisodeRecord, EpisodeRecord.episode_id == IncidentRow.episode_id)  # type: ignore[arg-type]
            .where(IncidentRow.student_ref == ref)  # type: ignore[arg-type]
            .order_by(EpisodeRecord.started_at)  # type: ignore[arg-type]
        ).all()
        return [(stored(StoredEpisode, e), stored_incident(row)) for row, e in rows]


def incident_history(engine: Engine, episode_ids: Iterable[str]) -> list[StoredAuditEntry]:
    """The audit entries about these episodes' records, in trail order."""
    subjects = [f"{SUBJECT_PREFIX}{i}" for i in episode_ids]
    with Session(engine) as session:
        entries = session.execute(
            select(AuditEntry)
            .where(AuditEntry.subject.in_(subjects))  # type: ignore[attr-defined]
            .order_by(AuditEntry.seq)  # type: ignore[arg-type]
        ).scalars()
        return [stored(StoredAuditEntry, e) for e in entries]
