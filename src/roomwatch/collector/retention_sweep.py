"""The SQL of telemetry retention: which room-days hold raw readings, and a room-day's
readings replaced by aggregates (what an aggregate holds is compliance/retention.py's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from roomwatch.collector.database import as_utc
from roomwatch.collector.models import StoredMessage, TelemetryRecord
from roomwatch.collector.read.records import StoredTelemetry, stored

#: Readings deleted per statement (SQLite's bound-parameter limit).
DELETE_CHUNK = 500


def raw_room_days(
    engine: Engine, cutoff: datetime, skip_prefix: str
) -> list[tuple[str, str, datetime]]:
    """Each room with readings before ``cutoff`` (not ids starting ``skip_prefix``), and
    the time of its first such reading."""
    t = TelemetryRecord.__table__.c  # type: ignore[attr-defined]
    with Session(engine) as session:
        rows = session.execute(
            select(t.site, t.room, func.min(t.ts))
            .where(t.ts < cutoff, t.message_id.not_like(f"{skip_prefix}%"))
            .group_by(t.site, t.room)
        ).all()
    return [(site, room, as_utc(first)) for site, room, first in rows]


def replace_readings(
    engine: Engine,
    site: str,
    room: str,
    span: tuple[datetime, datetime],
    skip_prefix: str,
    aggregate: Callable[[list[StoredTelemetry]], list[dict[str, Any]]],
) -> tuple[int, int]:
    """Replace the room's readings in [start, end) (not ids starting ``skip_prefix``) by
    ``aggregate`` of them, in one transaction; returns (rows removed, rows written)."""
    start, end = span
    t = TelemetryRecord.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        rows = [
            stored(StoredTelemetry, r)
            for r in session.execute(
                select(TelemetryRecord).where(
                    TelemetryRecord.site == site,  # type: ignore[arg-type]
                    TelemetryRecord.room == room,  # type: ignore[arg-type]
                    TelemetryRecord.ts >= start,  # type: ignore[arg-type]
                    TelemetryRecord.ts < end,  # type: ignore[arg-type]
                    TelemetryRecord.message_id.not_like(f"{skip_prefix}%"),  # type: ignore[attr-defined]
                )
            ).scalars()
        ]
        if not rows:
            return 0, 0
        aggregates = aggregate(rows)
        ids = [r.message_id for r in rows]
        for i in range(0, len(ids), DELETE_CHUNK):
            session.execute(delete(t).where(t.c.message_id.in_(ids[i : i + DELETE_CHUNK])))
        session.execute(t.insert(), aggregates)
        session.commit()
    return len(rows), len(aggregates)


def drop_telemetry_messages(engine: Engine, cutoff: datetime) -> int:
    """Delete the raw telemetry messages received before ``cutoff``; returns how many."""
    m = StoredMessage.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        result = session.execute(delete(m).where(m.c.kind == "telemetry", m.c.ts < cutoff))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
