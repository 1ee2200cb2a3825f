"""What the compliance reports and their rulebook select: episodes with their records,
the readings of occupied rooms, and the profiles rooms registered or reported."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, select
from sqlmodel import Session

from roomwatch.collector.models import AgentRecord, EpisodeRecord, RoomRecord, TelemetryRecord
from roomwatch.collector.read.incident_records import episodes_with_records
from roomwatch.collector.read.records import StoredEpisode, StoredReading, stored
from roomwatch.core.incident import IncidentRecord

RoomKey = tuple[str, str]


def episodes_started_between(
    engine: Engine, site: str | None, since: datetime, until: datetime
) -> list[tuple[StoredEpisode, IncidentRecord]]:
    """The episodes of ``site`` (None: every site) started in [since, until), by start."""
    ep = EpisodeRecord.__table__.c  # type: ignore[attr-defined]
    where = and_(ep.started_at >= since, ep.started_at < until)
    if site is not None:
        where = and_(where, ep.site == site)
    return episodes_with_records(engine, where, ordered=True)


def occupied_readings(
    engine: Engine, site: str | None, since: datetime, until: datetime
) -> list[StoredReading]:
    """The readings in [since, until) of rooms reported occupied or in an episode, by
    site, room and time."""
    t = TelemetryRecord.__table__.c  # type: ignore[attr-defined]
    query = (
        select(t.site, t.room, t.ts, t.temperature_c, t.lux)
        .where(t.ts >= since, t.ts < until)
        .where((t.occupied.is_(True)) | (t.episode_id.is_not(None)))
        .order_by(t.site, t.room, t.ts)
    )
    if site is not None:
        query = query.where(t.site == site)
    with Session(engine) as session:
        return [stored(StoredReading, row) for row in session.execute(query)]


def room_profiles(engine: Engine) -> tuple[dict[RoomKey, str], dict[RoomKey, str]]:
    """The profile each room was registered with, and the one each room's agent reports."""
    with Session(engine) as session:
        registered = {
            (r.site, r.room): r.profile
            for r in session.execute(select(RoomRecord)).scalars()
            if r.profile
        }
        reported = {
            (a.site, a.room): a.profile
            for a in session.execute(select(AgentRecord)).scalars()
            if a.profile
        }
    return registered, reported
