"""The rooms that have been heard from, each with its agent's last status."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector.models import AgentRecord, RoomRecord
from roomwatch.collector.read.records import StoredAgent, StoredRoom, stored


def rooms(engine: Engine) -> list[tuple[StoredRoom, StoredAgent | None]]:
    """By site and room; the agent is None for a room whose agent never sent a status."""
    query = (
        select(RoomRecord, AgentRecord)
        .outerjoin(
            AgentRecord,
            (AgentRecord.site == RoomRecord.site) & (AgentRecord.room == RoomRecord.room),  # type: ignore[arg-type]
        )
        .order_by(RoomRecord.site, RoomRecord.room)
    )
    with Session(engine) as session:
        return [
            (stored(StoredRoom, r), None if a is None else stored(StoredAgent, a))
            for r, a in session.execute(query).all()
        ]
