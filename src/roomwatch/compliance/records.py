"""Do the incident records still say what the audit trail says was saved?

The audit trail is hash-chained (collector/audit.py), so an edit of the trail itself is
found by ``audit.verify``. The incident records are ordinary rows: an edit made behind the
app's back (SQL, a database tool) changes a row but adds no audit entry. Replaying the
trail's ``incident.*`` entries (each holds the fields it changed, old and new) rebuilds every
record as the app saved it; any row that differs, exists without entries or is missing
although entries say it was saved is named here, with the last entry that vouches for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from roomwatch.collector import audit
from roomwatch.collector.incident_erasure import ANONYMISED
from roomwatch.collector.incidents import SUBJECT_PREFIX as PREFIX
from roomwatch.collector.read.incident_records import every_incident
from roomwatch.core.incident import IncidentRecord

#: Actions that change an incident record, and how the replay applies them.
SAVED = ("incident.created", "incident.updated")
__all__ = ["ANONYMISED", "PREFIX", "SAVED", "Mismatch", "check", "replay"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    episode_id: str
    reason: str
    last_entry: audit.AuditEntry | None

    def describe(self) -> str:
        e = self.last_entry
        who = (
            f" (last audited change: entry {e.seq}, {e.action} by {e.actor} at "
            f"{audit.canonical_time(e.at)})"
            if e is not None
            else " (no audit entry for it)"
        )
        return f"incident record of episode {self.episode_id}: {self.reason}{who}"


@dataclass
class _Replayed:
    values: dict[str, Any]
    version: int
    last: audit.AuditEntry


def replay(engine: Engine) -> dict[str, _Replayed]:
    """Every record as the audit trail says it was last saved."""
    empty = IncidentRecord().model_dump(mode="json")
    found: dict[str, _Replayed] = {}
    for entry in audit.entries(engine):
        if not entry.subject.startswith(PREFIX):
            continue
        episode_id = entry.subject[len(PREFIX) :]
        state = found.get(episode_id)
        if entry.action in SAVED:
            values = dict(state.values) if state else dict(empty)
            for name, change in (entry.detail.get("changed") or {}).items():
                values[name] = change[1]
            found[episode_id] = _Replayed(values, int(entry.detail.get("version", 0)), entry)
        elif entry.action == ANONYMISED and state is not None:
            for name in entry.detail.get("cleared", []):
                state.values[name] = empty.get(name)
            state.version = int(entry.detail.get("version", state.version))
            state.last = entry
    return found


def check(engine: Engine) -> list[Mismatch]:
    """Every incident record that differs from the audit trail's account of it."""
    expected = replay(engine)
    rows = every_incident(engine)
    problems = []
    for episode_id, row in sorted(rows.items()):
        state = expected.get(episode_id)
        if state is None:
            problems.append(Mismatch(episode_id, "the row has no audit entry (inserted)", None))
            continue
        actual = row.record.model_dump(mode="json")
        for name, value in actual.items():
            if _norm(value) != _norm(state.values.get(name)):
                problems.append(
                    Mismatch(
                        episode_id,
                        f"field {name} is {value!r} in the table but {state.values.get(name)!r} "
                        "per the audit trail (edited)",
                        state.last,
                    )
                )
                break
        else:
            if row.version != state.version:
                problems.append(
                    Mismatch(
                        episode_id,
                        f"version {row.version} in the table, {state.version} per the trail",
                        state.last,
                    )
                )
    for episode_id in sorted(set(expected) - set(rows)):
        problems.append(
            Mismatch(episode_id, "the row is missing (deleted)", expected[episode_id].last)
        )
    return problems


def _norm(value: Any) -> Any:
    """Times compare as instants (the trail keeps ISO text, the table a datetime)."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return value
