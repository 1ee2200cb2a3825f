"""The audit trail, read back."""

from __future__ import annotations

from sqlalchemy import Engine, select

from roomwatch.collector.models import AuditEntry
from roomwatch.collector.read.fetch import all_of
from roomwatch.collector.read.records import StoredAuditEntry


def audit_entries(
    engine: Engine, limit: int = 200, before: int | None = None
) -> list[StoredAuditEntry]:
    """Newest first; ``before``: only entries with a lower sequence number (paging back)."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc())  # type: ignore[attr-defined]
    if before is not None:
        query = query.where(AuditEntry.seq < before)  # type: ignore[arg-type]
    return all_of(engine, query.limit(limit), StoredAuditEntry)


def about(engine: Engine, subject: str) -> list[StoredAuditEntry]:
    """Every entry about ``subject`` (e.g. ``incident:EPISODE``), oldest first."""
    query = select(AuditEntry).where(AuditEntry.subject == subject).order_by(AuditEntry.seq)  # type: ignore[arg-type]
    return all_of(engine, query, StoredAuditEntry)
