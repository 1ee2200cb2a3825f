"""What happened in a simulation, read back from the collector's database.

Only what the real collector stored counts: episodes, alerts and the agents'
events (the actions) as they arrived. Times are seconds from the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func
from sqlmodel import Session, col, select

from roomwatch.collector.database import as_utc, make_engine
from roomwatch.collector.models import (
    AlertRecord,
    AlertTransition,
    EpisodeRecord,
    EventRecord,
    StoredMessage,
)

#: Agent events that are bookkeeping, not something the room did.
NOT_ACTIONS = frozenset({"config_loaded", "telemetry_dropped"})


@dataclass(frozen=True)
class Episode:
    room: str
    episode_id: str
    start_s: float
    end_s: float | None
    duration_s: float | None


@dataclass(frozen=True)
class Alert:
    type: str
    severity: str
    room: str
    episode_id: str | None
    raised_s: float
    resolved_s: float | None
    subject: str | None = None
    late: bool = False


@dataclass(frozen=True)
class Action:
    room: str
    at_s: float
    action: str


@dataclass(frozen=True)
class Messages:
    published: int
    delivered: int
    lost: int
    duplicates_stored: int


@dataclass(frozen=True)
class Result:
    episodes: list[Episode] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    messages: Messages = field(default_factory=lambda: Messages(0, 0, 0, 0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Published(Protocol):
    """A simulated room: who it is and the last sequence number its outbox reached."""

    @property
    def key(self) -> tuple[str, str]: ...

    @property
    def last_seq(self) -> int: ...


def _seconds(start: datetime, at: datetime) -> float:
    return round((as_utc(at) - start).total_seconds(), 3)


def read_result(database_url: str, start: datetime, rooms: Iterable[_Published]) -> Result:
    """Everything the collector stored about ``rooms``, as seconds from ``start``."""
    rooms = list(rooms)
    keys = {r.key for r in rooms}
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return Result(
                episodes=_episodes(session, start, keys),
                alerts=_alerts(session, start, keys),
                actions=_actions(session, start, keys),
                messages=_messages(session, rooms),
            )
    finally:
        engine.dispose()


def _episodes(session: Session, start: datetime, keys: set[tuple[str, str]]) -> list[Episode]:
    found = []
    for e in session.exec(select(EpisodeRecord)):
        if (e.site, e.room) not in keys:
            continue
        begin = _seconds(start, e.started_at)
        end = _seconds(start, e.ended_at) if e.ended_at is not None else None
        duration = round(end - begin, 3) if end is not None else None
        found.append(Episode(e.room, e.episode_id, begin, end, duration))
    return sorted(found, key=lambda e: (e.start_s, e.room, e.episode_id))


def _alerts(session: Session, start: datetime, keys: set[tuple[str, str]]) -> list[Alert]:
    resolved: dict[str, datetime] = {}
    for t in session.exec(select(AlertTransition).where(AlertTransition.state == "resolved")):
        if t.alert_id not in resolved or t.at < resolved[t.alert_id]:
            resolved[t.alert_id] = t.at
    found = []
    for a in session.exec(select(AlertRecord)):
        if (a.site, a.room) not in keys:
            continue
        gone = resolved.get(a.alert_id)
        found.append(
            Alert(
                type=a.type,
                severity=a.severity,
                room=a.room,
                episode_id=a.episode_id,
                raised_s=_seconds(start, a.raised_at),
                resolved_s=_seconds(start, gone) if gone is not None else None,
                subject=a.subject,
                late=a.late,
            )
        )
    return sorted(found, key=lambda a: (a.raised_s, a.room, a.type, a.subject or ""))


def _actions(session: Session, start: datetime, keys: set[tuple[str, str]]) -> list[Action]:
    found = [
        Action(e.room, _seconds(start, e.ts), e.type)
        for e in session.exec(select(EventRecord))
        if (e.site, e.room) in keys and e.type not in NOT_ACTIONS
    ]
    return sorted(found, key=lambda a: (a.at_s, a.room, a.action))


def _messages(session: Session, rooms: list[_Published]) -> Messages:
    published = sum(r.last_seq + 1 for r in rooms)
    delivered = duplicates = 0
    for r in rooms:
        site, room = r.key
        mine = (
            col(StoredMessage.site) == site,
            col(StoredMessage.room) == room,
            col(StoredMessage.seq).is_not(None),
        )
        rows = session.exec(select(func.count()).select_from(StoredMessage).where(*mine)).one()
        distinct = session.exec(
            select(func.count(func.distinct(StoredMessage.seq))).where(*mine)
        ).one()
        delivered += distinct
        duplicates += rows - distinct
    return Messages(published, delivered, published - delivered, duplicates)
