"""Episode verdicts from the database: the facts of each episode gathered in a few queries,
judged by :mod:`roomwatch.core.verdict`, and kept with the episode (``episode_verdict``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.read.records import StoredAlert, StoredAlertStep, StoredTelemetry
from roomwatch.collector.read.verdict_rows import (
    VerdictRows,
    episodes_to_judge,
    kept_verdict,
    verdict_rows,
)
from roomwatch.collector.verdict_book import VerdictToKeep, keep_verdicts
from roomwatch.compliance.context import Rulebook
from roomwatch.core.episode_facts import AlertFact, EpisodeFacts, EventFact, Reading
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.verdict import (
    Outcome,
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
        for facts in facts_of(verdict_rows(engine, ids[i : i + CHUNK]), book, config):
            result[facts.episode_id] = judge(facts, now)
    return result


def _reading(t: StoredTelemetry) -> Reading:
    return Reading(t.ts, t.temperature_c, t.lux, t.co2_ppm, t.door_locked, t.staff_present)


def _alert(a: StoredAlert, steps: list[StoredAlertStep]) -> AlertFact:
    """The alert with its first acknowledgement and resolution."""
    first: dict[str, StoredAlertStep] = {}
    for step in steps:
        first.setdefault(step.state, step)
    ack, resolved = first.get("acknowledged"), first.get("resolved")
    return AlertFact(
        a.alert_id,
        a.type,
        a.raised_at,
        ack.by if ack else a.acknowledged_by,
        ack.at if ack else None,
        resolved.at if resolved else None,
    )


def facts_of(rows: VerdictRows, book: Rulebook, config: CollectorConfig) -> list[EpisodeFacts]:
    """What the core judges, per episode, from what is stored about it."""
    max_gap_s = 3 * config.telemetry_interval_s
    found = []
    for ep in rows.episodes:
        rules = book.for_room(ep.site, ep.room)
        incident = rows.incidents.get(ep.episode_id)
        found.append(
            EpisodeFacts(
                episode_id=ep.episode_id,
                site=ep.site,
                room=ep.room,
                started_at=ep.started_at,
                ended_at=ep.ended_at,
                profile=rules.profile,
                calendar=rules.calendar,
                band=rules.band,
                checkpoint_count=ep.checkpoint_count,
                readings=[_reading(t) for t in rows.readings.get(ep.episode_id, [])],
                events=[
                    EventFact(e.ts, e.type, dict(e.fields))
                    for e in rows.events.get(ep.episode_id, [])
                ],
                alerts=[
                    _alert(a, rows.steps.get(a.alert_id, []))
                    for a in rows.alerts.get(ep.episode_id, [])
                ],
                record=incident.record if incident else IncidentRecord(),
                record_version=incident.version if incident else 0,
                record_updated_by=incident.updated_by if incident else None,
                record_updated_at=incident.updated_at if incident else None,
                max_gap_s=max_gap_s,
            )
        )
    return found


def keep(engine: Engine, found: Sequence[Verdict]) -> None:
    """Store each verdict with its episode (replacing the one kept before)."""
    keep_verdicts(
        engine,
        (
            VerdictToKeep(v.episode_id, v.outcome.value, v.computed_at, v.model_dump(mode="json"))
            for v in found
        ),
    )


def refresh(
    engine: Engine, config: CollectorConfig, now: datetime, since: datetime
) -> list[Verdict]:
    """Judge and keep the episodes that ended since ``since`` whose kept verdict is missing,
    still pending, or older than the last save of their record (a final one is left alone)."""
    ids = episodes_to_judge(engine, since, Outcome.PENDING.value)
    found = list(verdicts(engine, ids, config, now).values())
    keep(engine, found)
    return found


def kept(engine: Engine, episode_id: str) -> Verdict | None:
    """The verdict last kept for the episode, if any."""
    body = kept_verdict(engine, episode_id)
    return Verdict.model_validate(body) if body is not None else None
