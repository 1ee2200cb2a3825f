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

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.compliance_models import EpisodeVerdictRow
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.database import as_utc
from roomwatch.collector.incidents import _to_record
from roomwatch.collector.models import AuditEntry, EpisodeRecord, IncidentRow
from roomwatch.compliance.records import ANONYMISED, PREFIX
from roomwatch.compliance.verdicts import verdicts
from roomwatch.core.incident import STUDENT_REF_PATTERN, IncidentRecord

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


class UnknownStudentError(LookupError):
    pass


def _check_ref(ref: str) -> None:
    if not re.match(STUDENT_REF_PATTERN, ref):
        raise ValueError(
            f"{ref!r} is not a student reference (letters, digits, '.', '-', '_'; no spaces)"
        )


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
    with Session(engine) as session:
        rows = session.execute(
            select(IncidentRow, EpisodeRecord)
            .join(EpisodeRecord, EpisodeRecord.episode_id == IncidentRow.episode_id)  # type: ignore[arg-type]
            .where(IncidentRow.student_ref == ref)  # type: ignore[arg-type]
            .order_by(EpisodeRecord.started_at)  # type: ignore[arg-type]
        ).all()
        ids = [row.episode_id for row, _ in rows]
        history: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        subjects = [f"{PREFIX}{i}" for i in ids]
        for entry in session.execute(
            select(AuditEntry)
            .where(AuditEntry.subject.in_(subjects))  # type: ignore[attr-defined]
            .order_by(AuditEntry.seq)  # type: ignore[arg-type]
        ).scalars():
            history[entry.subject[len(PREFIX) :]].append(
                {
                    "seq": entry.seq,
                    "at": audit.canonical_time(entry.at),
                    "by": entry.actor,
                    "action": entry.action,
                    "detail": entry.detail,
                }
            )
        episodes = [
            {
                "episode_id": e.episode_id,
                "site": e.site,
                "room": e.room,
                "started_at": as_utc(e.started_at).isoformat(),
                "ended_at": as_utc(e.ended_at).isoformat() if e.ended_at else None,
                "record": _to_record(row).model_dump(mode="json"),
                "record_version": row.version,
                "history": history[e.episode_id],
            }
            for row, e in rows
        ]
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
    empty = IncidentRecord()

    def work(session: Session) -> list[audit.Change]:
        rows = list(
            session.execute(
                select(IncidentRow).where(IncidentRow.student_ref == ref).with_for_update()  # type: ignore[arg-type]
            ).scalars()
        )
        if not rows:
            raise UnknownStudentError(f"no incident record names student {ref!r}")
        at = now()
        changes = []
        for row in rows:
            cleared = [f for f in PERSONAL_FIELDS if getattr(row, f) != getattr(empty, f)]
            for name in PERSONAL_FIELDS:
                setattr(row, name, getattr(empty, name))
            row.version += 1
            row.updated_at = at
            row.updated_by = by
            session.add(row)
            changes.append(
                audit.Change(
                    by,
                    ANONYMISED,
                    f"{PREFIX}{row.episode_id}",
                    {"version": row.version, "cleared": cleared, "reason": "deletion request"},
                )
            )
        ids = [r.episode_id for r in rows]
        session.execute(
            delete(EpisodeVerdictRow).where(EpisodeVerdictRow.episode_id.in_(ids))  # type: ignore[attr-defined]
        )
        session.flush()
        changes.append(
            audit.Change(by, "student.deleted", "student:deleted", {"records": len(rows)})
        )
        return changes

    changes = audit.in_transaction(engine, work, lambda c: c, now)
    return [c.subject[len(PREFIX) :] for c in changes if c.action == ANONYMISED]
