"""A student's records anonymised on request: the write of compliance/privacy.py (which
fields are personal is decided there)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.incidents import SUBJECT_PREFIX
from roomwatch.collector.models import IncidentRow
from roomwatch.collector.verdict_book import forget_verdicts
from roomwatch.core.incident import IncidentRecord

#: The audit action of a record whose personal fields were cleared.
ANONYMISED = "incident.anonymised"


class UnknownStudentError(LookupError):
    pass


def anonymise_student(
    engine: Engine, ref: str, fields: Sequence[str], by: str, now: Callable[[], datetime]
) -> list[str]:
    """Clear ``fields`` of every record naming student ``ref`` (version + 1) and drop their
    kept verdicts, in one transaction with one audit entry per record and one for the
    request; none of the entries holds the reference or the cleared text. Returns the
    episode ids."""
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
            cleared = [f for f in fields if getattr(row, f) != getattr(empty, f)]
            for name in fields:
                setattr(row, name, getattr(empty, name))
            row.version += 1
            row.updated_at = at
            row.updated_by = by
            session.add(row)
            changes.append(
                audit.Change(
                    by,
                    ANONYMISED,
                    f"{SUBJECT_PREFIX}{row.episode_id}",
                    {"version": row.version, "cleared": cleared, "reason": "deletion request"},
                )
            )
        forget_verdicts(session, [r.episode_id for r in rows])
        session.flush()
        changes.append(
            audit.Change(by, "student.deleted", "student:deleted", {"records": len(rows)})
        )
        return changes

    changes = audit.in_transaction(engine, work, lambda c: c, now)
    return [c.subject[len(SUBJECT_PREFIX) :] for c in changes if c.action == ANONYMISED]
