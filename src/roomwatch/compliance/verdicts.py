"""Episode verdicts from the database: the facts of each episode gathered in a few queries,
judged by :mod:`roomwatch.core.verdict`, and kept with the episode (``episode_verdict``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, or_, select
from sqlmodel import Session

from roomwatch.collector.compliance_models import EpisodeVerdictRow
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.database import as_utc
from roomwatch.collector.incidents import _to_record
from roomwatch.collector.models import (
    AlertRecord,
    AlertTransition,
    EpisodeRecord,
    EventRecord,
    IncidentRow,
    TelemetryRecord,
)
from roomwatch.compliance.context import Rulebook, table
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.verdict import (
    AlertFact,
    EpisodeFacts,
    EventFact,
    Outcome,
    Reading,
    Verdict,
    judge,
)

#: Episodes whose facts are read in one round of queries.
CHUNK = 400


class UnknownEpisodeError(LookupError):
    pass


def verdict(
    engine: Engine,
    episode_id: str,
    config: CollectorConfig | None = None,
    now: datetime | None = None,
) -> Verdict:
    """The verdict on one episode, as of ``now`` (default: the wall clock).

    Returns a :class:`roomwatch.core.verdict.Verdict`; ``.model_dump(mode="json")`` gives::

        {"episode_id", "site", "room", "profile", "started_at", "ended_at", "duration_s",
         "student_ref", "outcome": "pass|fail|pending|unknown", "computed_at",
         "items": [{"id", "question", "outcome", "summary", "evidence": {...}}, ...]}

    with the items ``door_unlocked``, ``watched``, ``within_limit``, ``environment``,
    ``parents_notified`` and ``record_complete`` in that order. ``config`` supplies the room
    profiles and school calendars (default: the collector defaults).
    UnknownEpisodeError if there is no such episode.
    """
    found = verdicts(engine, [episode_id], config, now)
    if episode_id not in found:
        raise UnknownEpisodeError(f"no episode {episode_id!r}")
    return found[episode_id]


def verdicts(
    engine: Engine,
    episode_ids: Sequence[str],
    config: CollectorConfig | None = None,
    now: datetime | None = None,
) -> dict[str, Verdict]:
    """The verdicts on many episodes (unknown ids are left out), read in chunks."""
    config = config or CollectorConfig()
    now = now or datetime.now(UTC)
    book = Rulebook(engine, config)
    result: dict[str, Verdict] = {}
    ids = list(dict.fromkeys(episode_ids))
    for i in range(0, len(ids), CHUNK):
        for facts in _facts(engine, ids[i : i + CHUNK], book, config):
            result[facts.episode_id] = judge(facts, now)
    return result


def _facts(
    engine: Engine, ids: list[str], book: Rulebook, config: CollectorConfig
) -> list[EpisodeFacts]:
    with Session(engine) as session:
        episodes = list(
            session.execute(
                select(EpisodeRecord).where(EpisodeRecord.episode_id.in_(ids))  # type: ignore[attr-defined]
            ).scalars()
        )
        readings: dict[str, list[Reading]] = defaultdict(list)
        for t in session.execute(
            select(TelemetryRecord).where(TelemetryRecord.episode_id.in_(ids))  # type: ignore[union-attr]
        ).scalars():
            assert t.episode_id is not None
            readings[t.episode_id].append(
                Reading(
                    as_utc(t.ts), t.temperature_c, t.lux, t.co2_ppm, t.door_locked, t.staff_present
                )
            )
        events: dict[str, list[EventFact]] = defaultdict(list)
        for e in session.execute(
            select(EventRecord).where(EventRecord.episode_id.in_(ids))  # type: ignore[union-attr]
        ).scalars():
            assert e.episode_id is not None
            events[e.episode_id].append(EventFact(as_utc(e.ts), e.type, dict(e.fields)))
        alerts: dict[str, list[AlertFact]] = defaultdict(list)
        alert_rows = list(
            session.execute(
                select(AlertRecord).where(AlertRecord.episode_id.in_(ids))  # type: ignore[union-attr]
            ).scalars()
        )
        steps: dict[str, dict[str, tuple[datetime, str | None]]] = defaultdict(dict)
        if alert_rows:
            for s in session.execute(
                select(AlertTransition).where(
                    AlertTransition.alert_id.in_([a.alert_id for a in alert_rows])  # type: ignore[attr-defined]
                )
            ).scalars():
                steps[s.alert_id].setdefault(s.state, (as_utc(s.at), s.by))
        for a in alert_rows:
            assert a.episode_id is not None
            ack = steps[a.alert_id].get("acknowledged")
            resolved = steps[a.alert_id].get("resolved")
            alerts[a.episode_id].append(
                AlertFact(
                    a.alert_id,
                    a.type,
                    as_utc(a.raised_at),
                    ack[1] if ack else a.acknowledged_by,
                    ack[0] if ack else None,
                    resolved[0] if resolved else None,
                )
            )
        records = {
            r.episode_id: r
            for r in session.execute(
                select(IncidentRow).where(IncidentRow.episode_id.in_(ids))  # type: ignore[attr-defined]
            ).scalars()
        }
    max_gap_s = 3 * config.telemetry_interval_s
    found = []
    for ep in episodes:
        rules = book.for_room(ep.site, ep.room)
        row = records.get(ep.episode_id)
        found.append(
            EpisodeFacts(
                episode_id=ep.episode_id,
                site=ep.site,
                room=ep.room,
                started_at=as_utc(ep.started_at),
                ended_at=as_utc(ep.ended_at) if ep.ended_at else None,
                profile=rules.profile,
                calendar=rules.calendar,
                band=rules.band,
                checkpoint_count=ep.checkpoint_count,
                readings=readings[ep.episode_id],
                events=events[ep.episode_id],
                alerts=alerts[ep.episode_id],
                record=_to_record(row) if row else IncidentRecord(),
                record_version=row.version if row else 0,
                record_updated_by=row.updated_by if row else None,
                record_updated_at=as_utc(row.updated_at) if row else None,
                max_gap_s=max_gap_s,
            )
        )
    return found


def keep(engine: Engine, found: Sequence[Verdict]) -> None:
    """Store each verdict with its episode (replacing the one kept before)."""
    with Session(engine) as session:
        for v in found:
            session.merge(
                EpisodeVerdictRow(
                    episode_id=v.episode_id,
                    outcome=v.outcome.value,
                    computed_at=v.computed_at,
                    body=v.model_dump(mode="json"),
                )
            )
        session.commit()


def refresh(
    engine: Engine, config: CollectorConfig, now: datetime, since: datetime
) -> list[Verdict]:
    """Judge and keep the episodes that ended since ``since`` whose kept verdict is missing,
    still pending, or older than the last save of their record (a final one is left alone)."""
    e, v, i = table(EpisodeRecord), table(EpisodeVerdictRow), table(IncidentRow)
    query = (
        select(e.c.episode_id)
        .join(v, v.c.episode_id == e.c.episode_id, isouter=True)
        .join(i, i.c.episode_id == e.c.episode_id, isouter=True)
        .where(
            e.c.ended_at >= since,
            or_(
                v.c.episode_id.is_(None),
                v.c.outcome == Outcome.PENDING.value,
                i.c.updated_at > v.c.computed_at,
            ),
        )
    )
    with Session(engine) as session:
        ids = [row[0] for row in session.execute(query)]
    found = list(verdicts(engine, ids, config, now).values())
    keep(engine, found)
    return found


def kept(engine: Engine, episode_id: str) -> Verdict | None:
    """The verdict last kept for the episode, if any."""
    with Session(engine) as session:
        row = session.get(EpisodeVerdictRow, episode_id)
        return Verdict.model_validate(row.body) if row else None
