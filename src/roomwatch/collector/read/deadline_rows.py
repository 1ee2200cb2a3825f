"""What the compliance deadline checks select: episodes with their students."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector.models import EpisodeRecord, IncidentRow
from roomwatch.collector.read.records import StoredEpisodeSpan, stored


def _tables() -> tuple[Any, Any]:
    return EpisodeRecord.__table__, IncidentRow.__table__  # type: ignore[attr-defined]


def student_episodes_since(engine: Engine, since: datetime) -> list[StoredEpisodeSpan]:
    """The episodes started since ``since`` whose record names a student."""
    ep, inc = _tables()
    e, i = ep.c, inc.c
    query = (
        select(i.student_ref, e.episode_id, e.site, e.room, e.started_at, e.ended_at)
        .join(ep, i.episode_id == e.episode_id)
        .where(i.student_ref.is_not(None), e.started_at >= since)
    )
    with Session(engine) as session:
        return [stored(StoredEpisodeSpan, row) for row in session.execute(query)]


def episode_spans_since(engine: Engine, since: datetime) -> list[StoredEpisodeSpan]:
    """The episodes started since ``since``, with the student where a record names one."""
    ep, inc = _tables()
    e, i = ep.c, inc.c
    query = select(e.episode_id, e.site, e.room, e.started_at, e.ended_at, i.student_ref).join(
        inc, i.episode_id == e.episode_id, isouter=True
    )
    with Session(engine) as session:
        rows = session.execute(query.where(e.started_at >= since))
        return [stored(StoredEpisodeSpan, row) for row in rows]
