"""A student's records on request: everything Roomwatch holds about one student reference
(a parent's request), and their deletion (anonymisation) with an audit entry that names no
one.

Students are held by district reference only (core/incident.py); the reference, the
narrative fields and the name of the parent told are the personal data of a record. Deleting
clears them and keeps what the district must still count (times, durations, injuries as
yes/no, when and how the parents were told, the staff involved), so statistics and
deadlines stay true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from roomwatch.collector import audit
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.incident_erasure import UnknownStudentError, anonymise_student
from roomwatch.collector.incidents import StoredIncident
from roomwatch.collector.read.incident_records import incident_history, records_of_student
from roomwatch.collector.read.records import StoredAuditEntry, StoredEpisode
from roomwatch.compliance.records import PREFIX
from roomwatch.compliance.verdicts import verdicts
from roomwatch.core.incident import STUDENT_REF_PATTERN

__all__ = ["PERSONAL_FIELDS", "UnknownStudentError", "delete_student", "export_student"]

#: The fields of a record that are about the student (cleared by a deletion).
PERSONAL_FIELDS: tuple[str, ...] = (
    "student_ref",
    "precipitating_factors",
    "behavior_before",
    "behavior_during",
    "behavior_after",
    "injury_details",
    "parent_notified_whom",
    "notes",
)


def _check_ref(ref: str) -> None:
    if not re.match(STUDENT_REF_PATTERN, ref):
        raise ValueError(
            f"{ref!r} is not a student reference (letters, digits, '.', '-', '_'; no spaces)"
        )


def _history(entries: list[StoredAuditEntry], ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    history: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for entry in entries:
        history[entry.subject[len(PREFIX) :]].append(
            {
                "seq": entry.seq,
                "at": audit.canonical_time(entry.at),
                "by": entry.actor,
                "action": entry.action,
                "detail": entry.detail,
            }
        )
    return history


def _episode(
    e: StoredEpisode, incident: StoredIncident, history: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "episode_id": e.episode_id,
        "site": e.site,
        "room": e.room,
        "started_at": e.started_at.isoformat(),
        "ended_at": e.ended_at.isoformat() if e.ended_at else None,
        "record": incident.record.model_dump(mode="json"),
        "record_version": incident.version,
        "history": history,
    }


def export_student(
    engine: Engine,
    ref: str,
    by: str,
    now: Callable[[], datetime],
    config: CollectorConfig | None = None,
) -> dict[str, Any]:
    """Every record of student ``ref`` with its episode, verdict and audit history, as a
    JSON-ready dict; the export itself is audited (``student.exported``)."""
    _check_ref(ref)
    found = records_of_student(engine, ref)
    ids = [e.episode_id for e, _ in found]
    history = _history(incident_history(engine, ids), ids)
    episodes = [_episode(e, incident, history[e.episode_id]) for e, incident in found]
    if not episodes:
        raise UnknownStudentError(f"no incident record names student {ref!r}")
    at = now()
    judged = verdicts(engine, ids, config, at)
    for item in episodes:
        v = judged.get(str(item["episode_id"]))
        item["verdict"] = v.model_dump(mode="json") if v else None
    entry = audit.record(
        engine,
        audit.Change(by, "student.exported", "student:export", {"episodes": ids}),
        at,
    )
    return {
        "student_ref": ref,
        "exported_at": at.isoformat(),
        "exported_by": by,
        "audit_chain_head": entry.hash,
        "episodes": episodes,
    }


def delete_student(engine: Engine, ref: str, by: str, now: Callable[[], datetime]) -> list[str]:
    """Anonymise every record of student ``ref`` (PERSONAL_FIELDS cleared, version + 1) and
    drop their kept verdicts, in one transaction with one audit entry per record and one for
    the request; none of the entries holds the reference or the cleared text. Returns the
    episode ids."""
    _check_ref(ref)
    return anonymise_student(engine, ref, PERSONAL_FIELDS, by, now)
