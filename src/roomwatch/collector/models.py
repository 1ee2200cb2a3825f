"""The collector's tables (SQLModel). Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, LargeBinary
from sqlmodel import Field, SQLModel


def _utc() -> Any:
    return Column(DateTime(timezone=True), nullable=False)


class StoredMessage(SQLModel, table=True):
    """Every valid message an agent sent, once (the message id is the key)."""

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_room_ts", "site", "room", "ts"),
        Index("ix_message_room_seq", "site", "room", "seq"),
    )

    id: str = Field(primary_key=True, max_length=64)
    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ts: datetime = Field(sa_column=_utc())
    received_at: datetime = Field(sa_column=_utc())
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class AlertRecord(SQLModel, table=True):
    """An alert and where it is in its life."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_open", "site", "room", "state"),)

    alert_id: str = Field(primary_key=True, max_length=256)
    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    type: str = Field(max_length=40)
    severity: str = Field(max_length=10)
    state: str = Field(max_length=16)
    episode_id: str | None = Field(default=None, max_length=160)
    raised_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    message: str = Field(max_length=500)
    late: bool = False
    subject: str | None = Field(default=None, max_length=80)
    tier: int = 1
    notified_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    acknowledged_by: str | None = Field(default=None, max_length=64)


class AlertTransition(SQLModel, table=True):
    """Each step of an alert's life, kept for the audit."""

    __tablename__ = "alert_transition"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alert.alert_id", max_length=256, index=True)
    state: str = Field(max_length=16)
    at: datetime = Field(sa_column=_utc())
    by: str | None = Field(default=None, max_length=64)


class DeadLetter(SQLModel, table=True):
    """A message that failed validation: kept whole, with the reason."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_column=_utc())
    topic: str = Field(max_length=1024)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    reason: str = Field(max_length=1000)
    field_path: str | None = Field(default=None, max_length=200)


class AgentProgress(SQLModel, table=True):
    """Per agent: the sequence number up to which every message is stored (the last ack)."""

    __tablename__ = "agent_progress"

    site: str = Field(primary_key=True, max_length=64)
    room: str = Field(primary_key=True, max_length=64)
    acked_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=_utc())


class DeliveryAttempt(SQLModel, table=True):
    """Each try to reach a channel (email, SMS gateway, ntfy, ...) with an alert step."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=256, index=False)
    state: str = Field(max_length=16)
    tier: int
    channel: str = Field(max_length=500)  # redacted: no secrets
    at: datetime = Field(sa_column=_utc())
    ok: bool
    error: str | None = Field(default=None, max_length=1000)
    attempt: int
