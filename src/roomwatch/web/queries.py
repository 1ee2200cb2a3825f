"""What the pages and the API read from the database (the live state comes from the
collector itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector.database import as_utc
from roomwatch.collector.models import (
    AgentRecord,
    AlertRecord,
    AlertTransition,
    ApiToken,
    AppUser,
    AuditEntry,
    EpisodeRecord,
    EventRecord,
    RoomRecord,
    TelemetryRecord,
)

#: Most points drawn in an episode chart (longer episodes are thinned evenly).
CHART_POINTS = 400


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    kind: str  # episode, event, alert, door, staff, record
    text: str
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    temperature_c: float | None
    lux: float | None


T = TypeVar("T")


def _detached(session: Session, rows: list[T]) -> list[T]:
    for row in rows:
        session.expunge(row)
    return rows


def alerts(
    engine: Engine, *, open_only: bool = False, limit: int = 200, episode_id: str | None = None
) -> list[AlertRecord]:
    query = select(AlertRecord).order_by(AlertRecord.raised_at.desc())  # type: ignore[attr-defined]
    if open_only:
        query = query.where(AlertRecord.state != "resolved")  # type: ignore[arg-type]
    if episode_id is not None:
        query = query.where(AlertRecord.episode_id == episode_id)  # type: ignore[arg-type]
    with Session(engine) as session:
        return _detached(session, list(session.execute(query.limit(limit)).scalars()))


def alert(engine: Engine, alert_id: str) -> AlertRecord | None:
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(AlertRecord, alert_id)
        if row is not None:
            session.expunge(row)
        return row


def alert_steps(engine: Engine, alert_ids: list[str]) -> list[AlertTransition]:
    if not alert_ids:
        return []
    with Session(engine) as session:
        query = (
            select(AlertTransition)
            .where(AlertTransition.alert_id.in_(alert_ids))  # type: ignore[attr-defined]
            .order_by(AlertTransition.at, AlertTransition.id)  # type: ignore[arg-type]
        )
        return _detached(session, list(session.execute(query).scalars()))


def episodes(
    engine: Engine, site: str | None = None, room: str | None = None, limit: int = 100
) -> list[EpisodeRecord]:
    query = select(EpisodeRecord).order_by(EpisodeRecord.started_at.desc())  # type: ignore[attr-defined]
    if site is not None:
        query = query.where(EpisodeRecord.site == site)  # type: ignore[arg-type]
    if room is not None:
        query = query.where(EpisodeRecord.room == room)  # type: ignore[arg-type]
    with Session(engine) as session:
        return _detached(session, list(session.execute(query.limit(limit)).scalars()))


def episode(engine: Engine, episode_id: str) -> EpisodeRecord | None:
    with Session(engine) as session:
        row = session.get(EpisodeRecord, episode_id)
        if row is not None:
            session.expunge(row)
        return row


def _telemetry(engine: Engine, episode_id: str) -> list[TelemetryRecord]:
    with Session(engine) as session:
        query = (
            select(TelemetryRecord)
            .where(TelemetryRecord.episode_id == episode_id)  # type: ignore[arg-type]
            .order_by(TelemetryRecord.ts)  # type: ignore[arg-type]
        )
        return _detached(session, list(session.execute(query).scalars()))


def series(engine: Engine, episode_id: str) -> list[Sample]:
    """Temperature and light over the episode, thinned to at most CHART_POINTS."""
    rows = _telemetry(engine, episode_id)
    step = max(1, -(-len(rows) // CHART_POINTS))
    return [Sample(as_utc(r.ts), r.temperature_c, r.lux) for r in rows[::step]]


def _changes(rows: list[TelemetryRecord]) -> list[TimelineItem]:
    """Door, lock and staff changes, from the telemetry readings (one item per change)."""
    words = {
        "door_closed": ("door", "door closed", "door opened"),
        "door_locked": ("door", "door LOCKED", "door unlocked"),
        "staff_present": ("staff", "staff at the observation point", "staff away"),
    }
    items: list[TimelineItem] = []
    last: dict[str, bool | None] = {}
    for r in rows:
        for name, (kind, on, off) in words.items():
            value = getattr(r, name)
            if value is None or last.get(name) == value:
                continue
            last[name] = value
            items.append(TimelineItem(as_utc(r.ts), kind, on if value else off))
    return items


def timeline(engine: Engine, ep: EpisodeRecord) -> list[TimelineItem]:
    """Every event and alert step of the episode, oldest first."""
    items = [TimelineItem(as_utc(ep.started_at), "episode", f"episode started ({ep.start_reason})")]
    if ep.ended_at is not None:
        items.append(
            TimelineItem(as_utc(ep.ended_at), "episode", f"episode ended ({ep.end_reason})")
        )
    items += _changes(_telemetry(engine, ep.episode_id))
    names = display_names(engine)
    with Session(engine) as session:
        events = session.execute(
            select(EventRecord).where(EventRecord.episode_id == ep.episode_id)  # type: ignore[arg-type]
        ).scalars()
        for e in events:
            detail = ", ".join(f"{k}={v}" for k, v in sorted(e.fields.items()) if k != "episode_id")
            items.append(TimelineItem(as_utc(e.ts), "event", f"{e.type}: {detail}".rstrip(": ")))
        records = session.execute(
            select(AuditEntry).where(AuditEntry.subject == f"incident:{ep.episode_id}")  # type: ignore[arg-type]
        ).scalars()
        for entry in records:
            who = names.get(entry.actor, entry.actor)
            items.append(
                TimelineItem(as_utc(entry.at), "record", f"incident record saved by {who}")
            )
    found = alerts(engine, episode_id=ep.episode_id, limit=1000)
    by_id = {a.alert_id: a for a in found}
    for step in alert_steps(engine, list(by_id)):
        a = by_id[step.alert_id]
        who = f" by {names.get(step.by, step.by)}" if step.by else ""
        items.append(
            TimelineItem(
                as_utc(step.at),
                "alert",
                f"{a.type.replace('_', ' ')} {step.state}{who}: {a.message}",
                a.severity,
            )
        )
    items.sort(key=lambda i: i.at)
    return items


def rooms(engine: Engine) -> list[tuple[RoomRecord, AgentRecord | None]]:
    with Session(engine) as session:
        query = (
            select(RoomRecord, AgentRecord)
            .outerjoin(
                AgentRecord,
                (AgentRecord.site == RoomRecord.site) & (AgentRecord.room == RoomRecord.room),  # type: ignore[arg-type]
            )
            .order_by(RoomRecord.site, RoomRecord.room)
        )
        found = [(r, a) for r, a in session.execute(query).all()]
        for r, a in found:
            session.expunge(r)
            if a is not None:
                session.expunge(a)
        return found


def audit_entries(engine: Engine, limit: int = 200, before: int | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.seq.desc())  # type: ignore[attr-defined]
    if before is not None:
        query = query.where(AuditEntry.seq < before)  # type: ignore[arg-type]
    with Session(engine) as session:
        return _detached(session, list(session.execute(query.limit(limit)).scalars()))


def users(engine: Engine) -> list[AppUser]:
    with Session(engine) as session:
        query = select(AppUser).order_by(AppUser.username)
        return _detached(session, list(session.execute(query).scalars()))


def display_names(engine: Engine) -> dict[str, str]:
    """User ids to display names, for "acknowledged by" and the audit trail."""
    return {u.id: u.display_name for u in users(engine)}


def tokens(engine: Engine) -> list[ApiToken]:
    with Session(engine) as session:
        query = select(ApiToken).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
        return _detached(session, list(session.execute(query).scalars()))
