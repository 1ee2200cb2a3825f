"""What one batch's new messages say about sites, rooms, agents, episodes, telemetry and
events (docs/storage.md): folded per key, pure, ready for the write path's upserts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roomwatch.collector.database import as_utc
from roomwatch.core import wire


@dataclass(slots=True)
class Derived:
    """What one batch's new messages say about sites, rooms, agents, episodes, telemetry and
    events, folded per key so each key is written once per statement (PostgreSQL refuses an
    ON CONFLICT DO UPDATE that meets the same row twice)."""

    sites: set[str]
    rooms: dict[tuple[str, str], dict[str, Any]]
    agents: dict[tuple[str, str], dict[str, Any]]
    episodes: dict[str, dict[str, Any]]
    telemetry: list[dict[str, Any]]
    events: list[dict[str, Any]]


def status_time(message: wire.Status, received_at: datetime) -> datetime:
    """When a status became true, the order in which statuses replace each other.

    An online status (and any other) counts from its own ``ts``. An offline one may be the
    last will, which the agent composed when its connection began and the broker published
    only when the agent vanished: its ``ts`` is stale, so it counts from when it arrived
    (docs/wire-protocol.md), or its ``ts`` if that is later (a clean stop, a fast clock)."""
    if message.state == "offline":
        return max(message.ts, received_at)
    return message.ts


def _newer_status(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    """The same order as the upsert's SQL: later status time wins; on a tie, offline wins."""
    if current.get("last_status_at") is None:
        return True
    if candidate["last_status_at"] != current["last_status_at"]:
        return bool(candidate["last_status_at"] > current["last_status_at"])
    return bool(candidate["state"] == "offline" and current["state"] != "offline")


STATUS_COLUMNS = (
    "state",
    "agent_version",
    "config_digest",
    "profile",
    "acked_seq",
    "last_status_at",
)
AGENT_KINDS = frozenset(wire.AGENT_KINDS)


def derive(received: Sequence[tuple[wire.Message, datetime]], new_ids: set[str]) -> Derived:
    d = Derived(set(), {}, {}, {}, [], [])
    pending = set(new_ids)
    for m, received_at in received:
        if m.id not in pending:
            continue  # stored before (a redelivery), or a repeat within this batch
        pending.discard(m.id)
        received_at = as_utc(received_at)
        key = (m.site, m.room)
        d.sites.add(m.site)
        room = d.rooms.get(key)
        if room is None:
            d.rooms[key] = {"site": m.site, "room": m.room, "first_seen": m.ts, "last_seen": m.ts}
        else:
            room["first_seen"] = min(room["first_seen"], m.ts)
            room["last_seen"] = max(room["last_seen"], m.ts)
        if m.kind in AGENT_KINDS:
            _fold_agent(d, m, received_at)
        if isinstance(m, wire.Telemetry):
            d.telemetry.append(
                {
                    "message_id": m.id,
                    "site": m.site,
                    "room": m.room,
                    "ts": m.ts,
                    "temperature_c": m.temperature_c,
                    "lux": m.lux,
                    "co2_ppm": m.co2_ppm,
                    "occupied": m.occupied,
                    "door_closed": m.door_closed,
                    "door_locked": m.door_locked,
                    "staff_present": m.staff_present,
                    "lock_permit": m.lock_permit,
                    "episode_id": m.episode_id,
                }
            )
        elif isinstance(m, wire.Event):
            fields = m.fields
            episode_id = fields.get("episode_id")
            d.events.append(
                {
                    "message_id": m.id,
                    "site": m.site,
                    "room": m.room,
                    "ts": m.ts,
                    "type": m.type,
                    "episode_id": episode_id[:160] if isinstance(episode_id, str) else None,
                    "fields": fields,
                }
            )
        elif isinstance(m, wire.Episode):
            _fold_episode(d, m)
    return d


def _fold_agent(d: Derived, m: wire.Message, received_at: datetime) -> None:
    key = (m.site, m.room)
    agent = d.agents.get(key)
    if agent is None:
        agent = d.agents[key] = {"site": m.site, "room": m.room, "last_heard_at": received_at}
        agent.update(dict.fromkeys(STATUS_COLUMNS))
    else:
        agent["last_heard_at"] = max(agent["last_heard_at"], received_at)
    if isinstance(m, wire.Status):
        status = {
            "state": m.state,
            "agent_version": m.agent_version,
            "config_digest": m.config_digest,
            "profile": m.profile,
            "acked_seq": m.acked_seq,
            "last_status_at": status_time(m, received_at),
        }
        if _newer_status(status, agent):
            agent.update(status)


def _fold_episode(d: Derived, m: wire.Episode) -> None:
    episode = d.episodes.get(m.episode_id)
    if episode is None:
        episode = d.episodes[m.episode_id] = {
            "episode_id": m.episode_id,
            "site": m.site,
            "room": m.room,
            "started_at": m.started_at,
            "ended_at": None,
            "start_reason": None,
            "end_reason": None,
            "checkpoint_count": 0,
        }
    else:
        episode["started_at"] = min(episode["started_at"], m.started_at)
    if m.event is wire.EpisodeEvent.STARTED:
        if episode["start_reason"] is None:
            episode["start_reason"] = m.reason
    elif m.event is wire.EpisodeEvent.ENDED:
        ended_at = m.ended_at or m.ts
        if episode["ended_at"] is None or ended_at < episode["ended_at"]:
            episode["ended_at"] = ended_at
            episode["end_reason"] = m.reason
    else:
        episode["checkpoint_count"] += 1
