"""Stored alerts and the steps of their lives."""

from __future__ import annotations

from sqlalchemy import Engine, select

from roomwatch.collector.models import AlertRecord, AlertTransition
from roomwatch.collector.read.fetch import all_of, one_of
from roomwatch.collector.read.records import StoredAlert, StoredAlertStep


def alerts(
    engine: Engine, *, open_only: bool = False, limit: int = 200, episode_id: str | None = None
) -> list[StoredAlert]:
    """Newest first; ``open_only``: those not resolved; ``episode_id``: that episode's."""
    query = select(AlertRecord).order_by(AlertRecord.raised_at.desc())  # type: ignore[attr-defined]
    if open_only:
        query = query.where(AlertRecord.state != "resolved")  # type: ignore[arg-type]
    if episode_id is not None:
        query = query.where(AlertRecord.episode_id == episode_id)  # type: ignore[arg-type]
    return all_of(engine, query.limit(limit), StoredAlert)


def alert(engine: Engine, alert_id: str) -> StoredAlert | None:
    return one_of(engine, AlertRecord, alert_id, StoredAlert)


def alert_steps(engine: Engine, alert_ids: list[str]) -> list[StoredAlertStep]:
    """The steps of these alerts, oldest first."""
    if not alert_ids:
        return []
    query = (
        select(AlertTransition)
        .where(AlertTransition.alert_id.in_(alert_ids))  # type: ignore[attr-defined]
        .order_by(AlertTransition.at, AlertTransition.id)  # type: ignore[arg-type]
    )
    return all_of(engine, query, StoredAlertStep)
