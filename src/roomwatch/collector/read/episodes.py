"""Episodes: the list, one episode, its chart series and its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from roomwatch.collector.models import EpisodeRecord, EventRecord, TelemetryRecord
from roomwatch.collector.read import alerts, audit_log, people
from roomwatch.collector.read.fetch import all_of, one_of
from roomwatch.collector.read.records import StoredEpisode, StoredEvent, StoredTelemetry

#: Most points drawn in an episode chart (longer episodes are thinned evenly).
CHART_POINTS = 400

#: Telemetry columns whose changes the timeline shows: (kind, text when on, text when off).
_CHANGES = {
    "door_closed": ("door", "door closed", "door opened"),
    "door_locked": ("door", "door LOCKED", "door unlocked"),
    "staff_present": ("staff", "staff at the observation point", "staff away"),
}


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


def episodes(
    engine: Engine, site: str | None = None, room: str | None = None, limit: int = 100
) -> list[StoredEpisode]:
    """Newest first, of one site or room if given."""
    query = select(EpisodeRecord).order_by(EpisodeRecord.started_at.desc())  # type: ignore[attr-defined]
    if site is not None:
        query = query.where(EpisodeRecord.site == site)  # type: ignore[arg-type]
    if room is not None:
        query = query.where(EpisodeRecord.room == room)  # type: ignore[arg-type]
    return all_of(engine, query.limit(limit), StoredEpisode)


def episode(engine: Engine, episode_id: str) -> StoredEpisode | None:
    return one_of(engine, EpisodeRecord, episode_id, StoredEpisode)


def _telemetry(engine: Engine, episode_id: str) -> list[StoredTelemetry]:
    query = (
        select(TelemetryRecord)
        .where(TelemetryRecord.episode_id == episode_id)  # type: ignore[arg-type]
        .order_by(TelemetryRecord.ts)  # type: ignore[arg-type]
    )
    return all_of(engine, query, StoredTelemetry)


def series(engine: Engine, episode_id: str) -> list[Sample]:
    """Temperature and light over the episode, thinned to at most CHART_POINTS."""
    rows = _telemetry(engine, episode_id)
    step = max(1, -(-len(rows) // CHART_POINTS))
    return [Sample(r.ts, r.temperature_c, r.lux) for r in rows[::step]]


def _changes(rows: list[StoredTelemetry]) -> list[TimelineItem]:
    """Door, lock and staff changes, from the telemetry readings (one item per change)."""
    items: list[TimelineItem] = []
    last: dict[str, bool | None] = {}
    for r in rows:
        for name, (kind, on, off) in _CHANGES.items():
            value = getattr(r, name)
            if value is None or last.get(name) == value:
                continue
            last[name] = value
            items.append(TimelineItem(r.ts, kind, on if value else off))
    return items


def _events(engine: Engine, episode_id: str) -> list[TimelineItem]:
    query = select(EventRecord).where(EventRecord.episode_id == episode_id)  # type: ignore[arg-type]
    items = []
    for e in all_of(engine, query, StoredEvent):
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.fields.items()) if k != "episode_id")
        items.append(TimelineItem(e.ts, "event", f"{e.type}: {detail}".rstrip(": ")))
    return items


def _alert_steps(engine: Engine, episode_id: str, names: dict[str, str]) -> list[TimelineItem]:
    by_id = {a.alert_id: a for a in alerts.alerts(engine, episode_id=episode_id, limit=1000)}
    items = []
    for step in alerts.alert_steps(engine, list(by_id)):
        a = by_id[step.alert_id]
        who = f" by {names.get(step.by, step.by)}" if step.by else ""
        text = f"{a.type.replace('_', ' ')} {step.state}{who}: {a.message}"
        items.append(TimelineItem(step.at, "alert", text, a.severity))
    return items


def timeline(engine: Engine, ep: StoredEpisode) -> list[TimelineItem]:
    """Every event and alert step of the episode, oldest first."""
    items = [TimelineItem(ep.started_at, "episode", f"episode started ({ep.start_reason})")]
    if ep.ended_at is not None:
        items.append(TimelineItem(ep.ended_at, "episode", f"episode ended ({ep.end_reason})"))
    items += _changes(_telemetry(engine, ep.episode_id))
    names = people.display_names(engine)
    items += _events(engine, ep.episode_id)
    for entry in audit_log.about(engine, f"incident:{ep.episode_id}"):
        who = names.get(entry.actor, entry.actor)
        items.append(TimelineItem(entry.at, "record", f"incident record saved by {who}"))
    items += _alert_steps(engine, ep.episode_id, names)
    items.sort(key=lambda i: i.at)
    return items
