"""Incident records: saved with optimistic versioning, each save in the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.database import as_utc
from roomwatch.collector.models import EpisodeRecord, IncidentRow
from roomwatch.core.incident import IncidentRecord

_FIELDS = tuple(IncidentRecord.model_fields)
#: The audit subject of an incident record: this prefix and the episode id.
SUBJECT_PREFIX = "incident:"


class UnknownEpisodeError(LookupError):
    pass


class StaleRecordError(RuntimeError):
    """Someone saved the record since this editor loaded it: reload and merge."""

    def __init__(self, episode_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"the record of episode {episode_id} was saved by someone else "
            f"(version {actual}, you edited version {expected}); reload it and save again"
        )
        self.actual = actual


@dataclass(frozen=True, slots=True)
class StoredIncident:
    episode_id: str
    record: IncidentRecord
    version: int
    updated_at: datetime | None
    updated_by: str | None


def to_record(row: IncidentRow) -> IncidentRecord:
    """A stored row as the core's record (its notification time in UTC)."""
    values = {name: getattr(row, name) for name in _FIELDS}
    if values["parent_notified_at"] is not None:
        values["parent_notified_at"] = as_utc(values["parent_notified_at"])
    return IncidentRecord.model_validate(values)


def load(engine: Engine, episode_id: str) -> StoredIncident:
    """The episode's record (an empty one, version 0, before the first save)."""
    with Session(engine) as session:
        if session.get(EpisodeRecord, episode_id) is None:
            raise UnknownEpisodeError(f"no episode {episode_id!r}")
        row = session.get(IncidentRow, episode_id)
        if row is None:
            return StoredIncident(episode_id, IncidentRecord(), 0, None, None)
        return stored_incident(row)


def stored_incident(row: IncidentRow) -> StoredIncident:
    """A stored row with its version and last save."""
    return StoredIncident(
        row.episode_id, to_record(row), row.version, as_utc(row.updated_at), row.updated_by
    )


def save(
    engine: Engine,
    episode_id: str,
    record: IncidentRecord,
    by: str,
    expected_version: int,
    now: Callable[[], datetime],
) -> StoredIncident:
    """Store ``record`` if nobody saved since ``expected_version``; the fields that changed
    (old and new values) go into the audit trail in the same transaction."""

    def work(session: Session) -> tuple[StoredIncident, list[audit.Change]]:
        if session.get(EpisodeRecord, episode_id) is None:
            raise UnknownEpisodeError(f"no episode {episode_id!r}")
        row = session.get(IncidentRow, episode_id, with_for_update=True)
        version = row.version if row is not None else 0
        if version != expected_version:
            raise StaleRecordError(episode_id, expected_version, version)
        before = to_record(row) if row is not None else IncidentRecord()
        at = now()
        if row is None:
            row = IncidentRow(episode_id=episode_id, created_at=at, updated_at=at, updated_by=by)
        old, new = before.model_dump(mode="json"), record.model_dump(mode="json")
        changed = {name: [old[name], new[name]] for name in _FIELDS if old[name] != new[name]}
        for name, value in record.model_dump().items():
            setattr(row, name, value)
        row.version = version + 1
        row.updated_at = at
        row.updated_by = by
        session.add(row)
        session.flush()
        stored = StoredIncident(episode_id, record, row.version, at, by)
        change = audit.Change(
            by,
            "incident.created" if version == 0 else "incident.updated",
            f"{SUBJECT_PREFIX}{episode_id}",
            {"version": row.version, "changed": changed},
        )
        return stored, [change]

    stored, _ = audit.in_transaction(engine, work, lambda result: result[1], now)
    return stored
