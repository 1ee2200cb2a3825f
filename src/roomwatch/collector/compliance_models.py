"""The compliance tables (migration 0006): verdicts kept with their episodes, and the
scheduled report deliveries (so a report is sent once per period, and the trail of what
was sent, with the audit chain head it was made from, is kept)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel


class EpisodeVerdictRow(SQLModel, table=True):
    """The last verdict computed for an episode (core.verdict.Verdict as JSON)."""

    __tablename__ = "episode_verdict"
    __table_args__ = (
        ForeignKeyConstraint(
            ["episode_id"], ["episode.episode_id"], name="fk_episode_verdict_episode"
        ),
    )

    episode_id: str = Field(primary_key=True, max_length=160)
    outcome: str = Field(max_length=10, index=True)
    computed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class ReportDeliveryRow(SQLModel, table=True):
    """One scheduled report sent (or tried) for one period."""

    __tablename__ = "report_delivery"
    __table_args__ = (
        UniqueConstraint("kind", "scope", "period_start", "period_end", name="uq_report_delivery"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    scope: str = Field(max_length=64)  # a site id, or "*" for the whole district
    period_start: date
    period_end: date
    due: date
    sent_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    recipients: int
    chain_head: str = Field(max_length=64)
    ok: bool
    error: str | None = Field(default=None, max_length=1000)
