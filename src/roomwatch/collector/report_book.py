"""The trail of scheduled report deliveries (table ``report_delivery``): one row per kind,
scope and period, so a report is sent once and a failed one is tried again."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector.compliance_models import ReportDeliveryRow
from roomwatch.collector.read.records import StoredReportDelivery, stored


def _row(
    session: Session, kind: str, scope: str, start: date, end: date
) -> ReportDeliveryRow | None:
    return session.execute(
        select(ReportDeliveryRow).where(
            ReportDeliveryRow.kind == kind,  # type: ignore[arg-type]
            ReportDeliveryRow.scope == scope,  # type: ignore[arg-type]
            ReportDeliveryRow.period_start == start,  # type: ignore[arg-type]
            ReportDeliveryRow.period_end == end,  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()


def was_sent(engine: Engine, kind: str, scope: str, start: date, end: date) -> bool:
    """Whether the report of this kind, scope and period went out."""
    with Session(engine) as session:
        row = _row(session, kind, scope, start, end)
        return row is not None and row.ok


def record_delivery(engine: Engine, tried: StoredReportDelivery) -> StoredReportDelivery:
    """Keep a delivery tried: a new row, or the period's row with the new try's time,
    outcome, error and chain head. Returns the row as stored."""
    with Session(engine, expire_on_commit=False) as session:
        row = _row(session, tried.kind, tried.scope, tried.period_start, tried.period_end)
        if row is None:
            row = ReportDeliveryRow(
                kind=tried.kind,
                scope=tried.scope,
                period_start=tried.period_start,
                period_end=tried.period_end,
                due=tried.due,
                sent_at=tried.sent_at,
                recipients=tried.recipients,
                chain_head=tried.chain_head,
                ok=tried.ok,
            )
        row.sent_at, row.ok, row.error = tried.sent_at, tried.ok, tried.error
        row.chain_head = tried.chain_head
        session.add(row)
        session.commit()
        return stored(StoredReportDelivery, row)
