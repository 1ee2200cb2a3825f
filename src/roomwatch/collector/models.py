"""The collector's tables (SQLModel). Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


def _utc() -> Any:
    return Column(DateTime(timezone=True), nullable=False)


def _utc_or_null() -> Any:
    return Column(DateTime(timezone=True), nullable=True)


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
    #: How far ``ts`` (or an episode's times) lay outside the collector's window, seconds
    #: (positive: ahead); null when believed. Flagged messages are judged by received_at.
    clock_skew_s: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


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
    """A message that failed validation: a prefix of it, its size and hash, and the reason
    (collector/dead_letters.py)."""

    __tablename__ = "dead_letter"
    __table_args__ = (Index("ix_dead_letter_source", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_column=_utc())
    topic: str = Field(max_length=1024)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    reason: str = Field(max_length=1000)
    field_path: str | None = Field(default=None, max_length=200)
    payload_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    payload_sha256: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=130)


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


# ------------------------------------------------------------------------------------------
# Derived from the messages (docs/storage.md): written by Store.write_batch in the same
# transaction as the message rows, from the messages that transaction newly inserted.


class SiteRecord(SQLModel, table=True):
    """A site (a school) that has sent at least one message."""

    __tablename__ = "site"

    id: str = Field(primary_key=True, max_length=64)


class RoomRecord(SQLModel, table=True):
    """A room that has sent at least one message; staff and admins fill in the rest."""

    __tablename__ = "room"
    __table_args__ = (ForeignKeyConstraint(["site"], ["site.id"], name="fk_room_site"),)

    site: str = Field(primary_key=True, max_length=64)
    room: str = Field(primary_key=True, max_length=64)
    profile: str | None = Field(default=None, max_length=60)
    student_band: str | None = Field(default=None, max_length=40)
    first_seen: datetime = Field(sa_column=_utc())
    last_seen: datetime = Field(sa_column=_utc())


class AgentRecord(SQLModel, table=True):
    """A room's agent: its last status (newest wins) and when it was last heard from."""

    __tablename__ = "agent"
    __table_args__ = (
        ForeignKeyConstraint(["site", "room"], ["room.site", "room.room"], name="fk_agent_room"),
        CheckConstraint("state in ('online', 'offline')", name="ck_agent_state"),
    )

    site: str = Field(primary_key=True, max_length=64)
    room: str = Field(primary_key=True, max_length=64)
    state: str | None = Field(default=None, max_length=8)
    agent_version: str | None = Field(default=None, max_length=40)
    config_digest: str | None = Field(default=None, max_length=80)
    profile: str | None = Field(default=None, max_length=60)
    acked_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_status_at: datetime | None = Field(default=None, sa_column=_utc_or_null())
    last_heard_at: datetime = Field(sa_column=_utc())


class EpisodeRecord(SQLModel, table=True):
    """One use of a room, from the agent's episode messages (whatever order they came in)."""

    __tablename__ = "episode"
    __table_args__ = (
        ForeignKeyConstraint(["site", "room"], ["room.site", "room.room"], name="fk_episode_room"),
        Index("ix_episode_room_started", "site", "room", "started_at"),
    )

    episode_id: str = Field(primary_key=True, max_length=160)
    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    started_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc_or_null())
    start_reason: str | None = Field(default=None, max_length=200)
    end_reason: str | None = Field(default=None, max_length=200)
    checkpoint_count: int = 0


class TelemetryRecord(SQLModel, table=True):
    """One environment report, in typed columns (null: the agent could not vouch for it)."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_room_ts", "site", "room", "ts"),)

    message_id: str = Field(primary_key=True, max_length=64)
    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    ts: datetime = Field(sa_column=_utc())
    temperature_c: float | None = None
    lux: float | None = None
    co2_ppm: float | None = None
    occupied: bool | None = None
    door_closed: bool | None = None
    door_locked: bool | None = None
    staff_present: bool | None = None
    lock_permit: bool
    episode_id: str | None = Field(default=None, max_length=160)


class EventRecord(SQLModel, table=True):
    """One discrete fact an agent reported, with the fields of its type."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_room_ts", "site", "room", "ts"),)

    message_id: str = Field(primary_key=True, max_length=64)
    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    ts: datetime = Field(sa_column=_utc())
    type: str = Field(max_length=64)
    episode_id: str | None = Field(default=None, max_length=160)
    fields: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


#: The roles a user may have (app_user.role).
USER_ROLES = ("staff", "admin", "auditor")


class AppUser(SQLModel, table=True):
    """A person who signs in to the web app. The id (never the name) goes on the wire."""

    __tablename__ = "app_user"
    __table_args__ = (
        UniqueConstraint("username", name="uq_app_user_username"),
        CheckConstraint("role in ('staff', 'admin', 'auditor')", name="ck_app_user_role"),
    )

    id: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=150)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    password_hash: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_utc())
    disabled: bool = False


# ------------------------------------------------------------------------------------------
# Written by people through the web app (migration 0005).


class IncidentRow(SQLModel, table=True):
    """The incident record of one episode (core.incident.IncidentRecord), one version kept:
    every save is also in the audit trail with the fields that changed."""

    __tablename__ = "incident_record"
    __table_args__ = (
        ForeignKeyConstraint(
            ["episode_id"], ["episode.episode_id"], name="fk_incident_record_episode"
        ),
        Index("ix_incident_record_student", "student_ref"),
    )

    episode_id: str = Field(primary_key=True, max_length=160)
    student_ref: str | None = Field(default=None, max_length=40)
    precipitating_factors: str = Field(default="", max_length=4000)
    initiated_by: str = Field(default="", max_length=200)
    supervised_by: str = Field(default="", max_length=200)
    removed_by: str = Field(default="", max_length=200)
    behavior_before: str = Field(default="", max_length=4000)
    behavior_during: str = Field(default="", max_length=4000)
    behavior_after: str = Field(default="", max_length=4000)
    student_injury: bool | None = None
    staff_injury: bool | None = None
    injury_details: str = Field(default="", max_length=4000)
    parent_notified_by: str = Field(default="", max_length=200)
    parent_notified_whom: str = Field(default="", max_length=200)
    parent_notification_method: str | None = Field(default=None, max_length=20)
    parent_notified_at: datetime | None = Field(default=None, sa_column=_utc_or_null())
    notes: str = Field(default="", max_length=4000)
    version: int = 1
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    updated_by: str = Field(max_length=64)


class AuditEntry(SQLModel, table=True):
    """One link of the hash-chained audit trail (collector/audit.py): who did what, when."""

    __tablename__ = "audit_log"

    seq: int = Field(
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False, nullable=False)
    )
    at: datetime = Field(sa_column=_utc())
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=300)
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is kept."""

    __tablename__ = "web_session"
    __table_args__ = (
        ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_web_session_user"),
    )

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())


class ApiToken(SQLModel, table=True):
    """A bearer token for an integration, acting as its user. Only the hash is kept."""

    __tablename__ = "api_token"
    __table_args__ = (
        ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_api_token_user"),
        UniqueConstraint("token_hash", name="uq_api_token_hash"),
    )

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_utc())
    last_used_at: datetime | None = Field(default=None, sa_column=_utc_or_null())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc_or_null())


class PushSubscription(SQLModel, table=True):
    """A browser that asked for Web Push alerts for its user."""

    __tablename__ = "push_subscription"
    __table_args__ = (
        ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_push_subscription_user"),
        UniqueConstraint("endpoint", name="uq_push_subscription_endpoint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=64, index=True)
    endpoint: str = Field(max_length=1000)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=_utc())
    last_error: str | None = Field(default=None, max_length=500)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per user and address, per address, and per user, and the lock
    they earned (web/throttle.py). Kept in the database so that every web process sees the
    same counts, a restart forgets nothing, and ``roomwatch user unlock`` can lift a lock."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (Index("ix_sign_in_throttle_username", "username"),)

    #: "pair", "address" or "user", then what it counts: ``pair\x1fNAME\x1fADDRESS``...
    key: str = Field(primary_key=True, max_length=400)
    scope: str = Field(max_length=16)
    username: str | None = Field(default=None, max_length=150)
    address: str | None = Field(default=None, max_length=100)
    failures: int = 0
    window_started_at: datetime = Field(sa_column=_utc())
    locked_until: datetime | None = Field(default=None, sa_column=_utc_or_null())
    #: Locks earned in a row (each one twice as long); a successful sign-in resets it.
    lockouts: int = 0
