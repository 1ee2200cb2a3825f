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
from datetime import datetime, time, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import Engine

from roomwatch.collector import audit
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.read.records import StoredTelemetry
from roomwatch.collector.read.verdict_rows import ended_unjudged_before
from roomwatch.collector.retention_sweep import (
    drop_telemetry_messages,
    raw_room_days,
    replace_readings,
)
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
    rows: list[StoredTelemetry], minute: datetime, episode_id: str | None
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
    kept_verdicts = _keep_verdicts(engine, cutoff, at, config)
    removed = written = 0
    for site, room, first in raw_room_days(engine, cutoff, AGGREGATE_PREFIX):
        day = first.date()
        while datetime.combine(day, time(0), cutoff.tzinfo) < cutoff:
            start = datetime.combine(day, time(0), cutoff.tzinfo)
            span = (start, min(start + timedelta(days=1), cutoff))
            r, w = replace_readings(engine, site, room, span, AGGREGATE_PREFIX, _per_minute)
            removed, written = removed + r, written + w
            day += timedelta(days=1)
    messages = drop_telemetry_messages(engine, cutoff)
    result = Downsampled(cutoff, removed, written, messages, kept_verdicts)
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


def _per_minute(rows: list[StoredTelemetry]) -> list[dict[str, Any]]:
    """One aggregate per minute and episode, in time order."""
    groups: dict[tuple[datetime, str | None], list[StoredTelemetry]] = defaultdict(list)
    for r in rows:
        minute = r.ts.replace(second=0, microsecond=0)
        groups[(minute, r.episode_id)].append(r)
    return [
        _aggregate(g, minute, ep)
        for (minute, ep), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]


def _keep_verdicts(
    engine: Engine, cutoff: datetime, at: datetime, config: CollectorConfig | None
) -> int:
    """Judge the ended episodes whose readings are about to be thinned, if not kept yet."""
    ids = ended_unjudged_before(engine, cutoff)
    if not ids:
        return 0
    found = verdicts(engine, ids, config, at)
    keep(engine, list(found.values()))
    return len(found)
