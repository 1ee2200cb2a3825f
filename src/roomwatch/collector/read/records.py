"""Plain, frozen records of what is stored: what the read side hands out.

Each record's fields are named as the table's columns, so :func:`stored` can copy a row
into it; times come back as UTC whatever the database (SQLite hands them back naive)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar

from roomwatch.collector.database import as_utc

R = TypeVar("R")


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    found = _NAMES.get(cls)
    if found is None:
        found = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return found


def stored(cls: type[R], row: object) -> R:
    """``row`` (an ORM object or a SQLAlchemy ``Row``) as a ``cls`` record."""
    values: dict[str, Any] = {}
    for name in _names(cls):
        value = getattr(row, name)
        values[name] = as_utc(value) if isinstance(value, datetime) else value
    return cls(**values)


@dataclass(frozen=True, slots=True)
class StoredEpisode:
    """One use of a room (table ``episode``)."""

    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    start_reason: str | None
    end_reason: str | None
    checkpoint_count: int


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert and where it is in its life (table ``alert``)."""

    alert_id: str
    site: str
    room: str
    type: str
    severity: str
    state: str
    episode_id: str | None
    raised_at: datetime
    updated_at: datetime
    message: str
    late: bool
    subject: str | None
    tier: int
    notified_at: datetime | None
    acknowledged_by: str | None


@dataclass(frozen=True, slots=True)
class StoredAlertStep:
    """One step of an alert's life (table ``alert_transition``)."""

    alert_id: str
    state: str
    at: datetime
    by: str | None


@dataclass(frozen=True, slots=True)
class StoredTelemetry:
    """One environment report in typed columns (table ``telemetry``)."""

    message_id: str
    site: str
    room: str
    ts: datetime
    temperature_c: float | None
    lux: float | None
    co2_ppm: float | None
    occupied: bool | None
    door_closed: bool | None
    door_locked: bool | None
    staff_present: bool | None
    lock_permit: bool
    episode_id: str | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One discrete fact an agent reported (table ``event``)."""

    message_id: str
    site: str
    room: str
    ts: datetime
    type: str
    episode_id: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A room that has been heard from (table ``room``)."""

    site: str
    room: str
    profile: str | None
    student_band: str | None
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """A room's agent: its last status (table ``agent``)."""

    site: str
    room: str
    state: str | None
    agent_version: str | None
    config_digest: str | None
    profile: str | None
    acked_seq: int | None
    last_status_at: datetime | None
    last_heard_at: datetime


@dataclass(frozen=True, slots=True)
class StoredAuditEntry:
    """One link of the hash-chained audit trail (table ``audit_log``)."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A person who signs in (table ``app_user``), without the password hash."""

    id: str
    username: str
    display_name: str
    role: str
    created_at: datetime
    disabled: bool


@dataclass(frozen=True, slots=True)
class StoredToken:
    """An API token (table ``api_token``), without its hash."""

    id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredPushSubscription:
    """Where one browser takes Web Push messages (table ``push_subscription``)."""

    id: int
    user_id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class StoredSignInCount:
    """Failed sign-ins counted under one key (table ``sign_in_throttle``)."""

    key: str
    scope: str
    username: str | None
    address: str | None
    failures: int
    window_started_at: datetime
    locked_until: datetime | None
    lockouts: int


@dataclass(frozen=True, slots=True)
class StoredEpisodeSpan:
    """An episode's room, times and student reference (tables ``episode`` and
    ``incident_record``): what the deadline checks compare episodes by."""

    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    student_ref: str | None


@dataclass(frozen=True, slots=True)
class StoredReading:
    """The environment part of a telemetry row (table ``telemetry``)."""

    site: str
    room: str
    ts: datetime
    temperature_c: float | None
    lux: float | None


@dataclass(frozen=True, slots=True)
class StoredReportDelivery:
    """One scheduled report sent, or tried, for one period (table ``report_delivery``)."""

    kind: str
    scope: str
    period_start: date
    period_end: date
    due: date
    sent_at: datetime
    recipients: int
    chain_head: str
    ok: bool
    error: str | None
