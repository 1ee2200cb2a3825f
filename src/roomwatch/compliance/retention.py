"""Retention: per-reading telemetry older than ``retention.telemetry_raw_days`` becomes one
row per room, minute and episode, and the raw telemetry messages go; audited.

The aggregate keeps what the audit questions need, leaning to the unsafe side: the mean
temperature, the lowest light, the highest CO2; occupied, door closed, door locked and lock
permit if any reading said so; staff present only if no reading said absent. Verdicts of
the episodes concerned are computed and kept first (episode_verdict), from the full data.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.compliance_models import EpisodeVerdictRow
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.database import as_utc
from roomwatch.collector.models import EpisodeRecord, StoredMessage, TelemetryRecord
from roomwatch.compliance.context import table
from roomwatch.compliance.verdicts import keep, verdicts

log = logging.getLogger(__name__)

AGGREGATE_PREFIX = "agg-"


@dataclass(frozen=True, slots=True)
class Downsampled:
    cutoff: datetime
    rows_removed: int
    rows_written: int
    messages_removed: int
    verdicts_kept: int


def _any(values: list[bool | None]) -> bool | None:
    known = [v for v in values if v is not None]
    return any(known) if known else None


def _staff(values: list[bool | None]) -> bool | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return all(known)


def _aggregate(
    rows: list[TelemetryRecord], minute: datetime, episode_id: str | None
) -> dict[str, Any]:
    site, room = rows[0].site, rows[0].room
    key = f"{site}/{room}/{minute.isoformat()}/{episode_id or ''}"
    temps = [r.temperature_c for r in rows if r.temperature_c is not None]
    luxes = [r.lux for r in rows if r.lux is not None]
    co2s = [r.co2_ppm for r in rows if r.co2_ppm is not None]
    return {
        "message_id": AGGREGATE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40],
        "site": site,
        "room": room,
        "ts": minute,
        "temperature_c": round(fmean(temps), 2) if temps else None,
        "lux": min(luxes) if luxes else None,
        "co2_ppm": max(co2s) if co2s else None,
        "occupied": _any([r.occupied for r in rows]),
        "door_closed": _any([r.door_closed for r in rows]),
        "door_locked": _any([r.door_locked for r in rows]),
        "staff_present": _staff([r.staff_present for r in rows]),
        "lock_permit": any(r.lock_permit for r in rows),
        "episode_id": episode_id,
    }


def downsample(
    engine: Engine, days: int, now: Callable[[], datetime], config: CollectorConfig | None = None
) -> Downsampled:
    """Replace raw telemetry older than ``days`` with per-minute aggregates, a room-day per
    transaction; one audit entry for the run."""
    at = now()
    cutoff = at - timedelta(days=days)
    t = table(TelemetryRecord)
    kept_verdicts = _keep_verdicts(engine, cutoff, at, config)
    removed = written = 0
    with Session(engine) as session:
        room_days = session.execute(
            select(t.c.site, t.c.room, func.min(t.c.ts))
            .where(t.c.ts < cutoff, t.c.message_id.not_like(f"{AGGREGATE_PREFIX}%"))
            .group_by(t.c.site, t.c.room)
        ).all()
    for site, room, first in room_days:
        day = as_utc(first).date()
        while datetime.combine(day, time(0), cutoff.tzinfo) < cutoff:
            r, w = _room_day(engine, site, room, day, cutoff)
            removed, written = removed + r, written + w
            day += timedelta(days=1)
    m = table(StoredMessage)
    with Session(engine) as session:
        result_ = session.execute(delete(m).where(m.c.kind == "telemetry", m.c.ts < cutoff))
        messages = getattr(result_, "rowcount", 0)
        session.commit()
    result = Downsampled(cutoff, removed, written, int(messages or 0), kept_verdicts)
    audit.record(
        engine,
        audit.Change(
            "system",
            "telemetry.downsampled",
            "telemetry",
            {
                "before": cutoff.isoformat(),
                "rows_removed": removed,
                "rows_written": written,
                "messages_removed": result.messages_removed,
                "verdicts_kept": kept_verdicts,
            },
        ),
        at,
    )
    log.info("telemetry before %s downsampled: %d rows -> %d", cutoff, removed, written)
    return result


def _room_day(engine: Engine, site: str, room: str, day: date, cutoff: datetime) -> tuple[int, int]:
    start = datetime.combine(day, time(0), cutoff.tzinfo)
    end = min(start + timedelta(days=1), cutoff)
    with Session(engine) as session:
        rows = list(
            session.execute(
                select(TelemetryRecord).where(
                    TelemetryRecord.site == site,  # type: ignore[arg-type]
                    TelemetryRecord.room == room,  # type: ignore[arg-type]
                    TelemetryRecord.ts >= start,  # type: ignore[arg-type]
                    TelemetryRecord.ts < end,  # type: ignore[arg-type]
                    TelemetryRecord.message_id.not_like(f"{AGGREGATE_PREFIX}%"),  # type: ignore[attr-defined]
                )
            ).scalars()
        )
        if not rows:
            return 0, 0
        groups: dict[tuple[datetime, str | None], list[TelemetryRecord]] = defaultdict(list)
        for r in rows:
            minute = as_utc(r.ts).replace(second=0, microsecond=0)
            groups[(minute, r.episode_id)].append(r)
        aggregates = [
            _aggregate(g, minute, ep)
            for (minute, ep), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ]
        t = table(TelemetryRecord)
        ids = [r.message_id for r in rows]
        for i in range(0, len(ids), 500):
            session.execute(delete(t).where(t.c.message_id.in_(ids[i : i + 500])))
        session.execute(t.insert(), aggregates)
        session.commit()
    return len(rows), len(aggregates)


def _keep_verdicts(
    engine: Engine, cutoff: datetime, at: datetime, config: CollectorConfig | None
) -> int:
    """Judge the ended episodes whose readings are about to be thinned, if not kept yet."""
    e, v = table(EpisodeRecord), table(EpisodeVerdictRow)
    with Session(engine) as session:
        ids = [
            row[0]
            for row in session.execute(
                select(e.c.episode_id)
                .join(v, v.c.episode_id == e.c.episode_id, isouter=True)
                .where(e.c.started_at < cutoff, e.c.ended_at.is_not(None), v.c.episode_id.is_(None))
            )
        ]
    if not ids:
        return 0
    found = verdicts(engine, ids, config, at)
    keep(engine, list(found.values()))
    return len(found)
