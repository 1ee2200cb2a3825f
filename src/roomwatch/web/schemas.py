"""The JSON API's shapes (they are also what the page templates render)."""

from __future__ import annotations

import ipaddress
import unicodedata
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from roomwatch.collector.database import as_utc
from roomwatch.collector.read.records import StoredAlert, StoredAuditEntry, StoredEpisode
from roomwatch.collector.room_book import RoomSnapshot
from roomwatch.core import rules
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.policy import StudentBand
from roomwatch.core.verdict import Verdict

SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}

#: Path parameters: site and room ids as the wire allows them.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RoomOut(Out):
    site: str
    room: str
    profile: str
    profile_name: str
    student_band: str | None
    online: bool | None = Field(description="null: not heard since the collector started")
    last_heard: datetime | None
    reading_at: datetime | None
    occupied: bool | None
    door_closed: bool | None
    door_locked: bool | None
    staff_present: bool | None = Field(description="null: no staff sensor fitted")
    lock_permit: bool | None
    temperature_c: float | None
    lux: float | None
    co2_ppm: float | None
    temperature_min_c: float | None
    temperature_max_c: float | None
    lux_min: float | None
    co2_max_ppm: float | None
    episode_id: str | None
    episode_started: datetime | None
    elapsed_s: float | None = Field(
        description="the episode's age by the collector's clock when this was made (timers "
        "count on from it, so a device with a wrong clock still shows the right time)"
    )
    limit_s: float | None
    warning_s: float | None
    faults: dict[str, str]
    open_alerts: int
    worst_severity: str | None

    @property
    def key(self) -> str:
        return f"{self.site}/{self.room}"

    @property
    def dom_id(self) -> str:
        return "room-" + "".join(c if c.isalnum() else "-" for c in self.key)

    @classmethod
    def of(cls, state: RoomSnapshot, now: datetime) -> RoomOut:
        v, t, limits = state.view, state.view.telemetry, state.limits
        worst = max(
            (a.severity.value for a in state.alerts),
            key=lambda s: SEVERITY_ORDER.get(s, 0),
            default=None,
        )
        return cls(
            site=v.site,
            room=v.room,
            profile=state.profile.id,
            profile_name=state.profile.name,
            student_band=state.registration.student_band.value
            if state.registration.student_band
            else None,
            online=v.online,
            last_heard=v.last_heard,
            reading_at=t.ts if t else None,
            occupied=t.occupied if t else None,
            door_closed=t.door_closed if t else None,
            door_locked=t.door_locked if t else None,
            staff_present=t.staff_present if t else None,
            lock_permit=t.lock_permit if t else None,
            temperature_c=t.temperature_c if t else None,
            lux=t.lux if t else None,
            co2_ppm=t.co2_ppm if t else None,
            temperature_min_c=limits.temperature_c.min,
            temperature_max_c=limits.temperature_c.max,
            lux_min=limits.lux_min,
            co2_max_ppm=limits.co2_max_ppm,
            episode_id=v.episode_id,
            episode_started=v.episode_started,
            elapsed_s=(now - v.episode_started).total_seconds() if v.episode_started else None,
            limit_s=state.watch.limit_s,
            warning_s=state.watch.warning_s,
            faults=dict(v.faults),
            open_alerts=len(state.alerts),
            worst_severity=worst,
        )


class AlertOut(Out):
    alert_id: str
    site: str
    room: str
    type: str
    severity: str
    state: str
    episode_id: str | None
    raised_at: datetime
    message: str
    late: bool
    subject: str | None
    tier: int
    acknowledged_by: str | None = Field(description="the user id of whoever acknowledged")

    @property
    def dom_id(self) -> str:
        return "alert-" + "".join(c if c.isalnum() else "-" for c in self.alert_id)

    @property
    def title(self) -> str:
        return self.type.replace("_", " ")

    @classmethod
    def of_open(cls, a: rules.OpenAlert, state: str | None = None) -> AlertOut:
        """An alert as the collector holds it now (``state``: the step just taken)."""
        return cls._of(a, state)

    @classmethod
    def of_record(cls, r: StoredAlert) -> AlertOut:
        """An alert as stored."""
        return cls._of(r, None)

    @classmethod
    def _of(cls, source: rules.OpenAlert | StoredAlert, state: str | None) -> AlertOut:
        # Same attribute names on both; enum members validate to their string values.
        out = cls.model_validate(source, from_attributes=True)
        update: dict[str, Any] = {"raised_at": as_utc(out.raised_at)}
        if state is not None:
            update["state"] = state
        return out.model_copy(update=update)


class EpisodeOut(Out):
    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    start_reason: str | None
    end_reason: str | None
    checkpoint_count: int

    @classmethod
    def of(cls, e: StoredEpisode) -> EpisodeOut:
        started = as_utc(e.started_at)
        ended = as_utc(e.ended_at) if e.ended_at else None
        return cls(
            episode_id=e.episode_id,
            site=e.site,
            room=e.room,
            started_at=started,
            ended_at=ended,
            duration_s=(ended - started).total_seconds() if ended else None,
            start_reason=e.start_reason,
            end_reason=e.end_reason,
            checkpoint_count=e.checkpoint_count,
        )


class TimelineOut(Out):
    at: datetime
    kind: str
    text: str
    severity: str | None


class SampleOut(Out):
    at: datetime
    temperature_c: float | None
    lux: float | None


class EpisodeDetail(Out):
    episode: EpisodeOut
    timeline: list[TimelineOut]
    samples: list[SampleOut]
    alerts: list[AlertOut]
    record_missing: list[str]
    verdict: Verdict | None = Field(
        description="door unlocked, watched, within the limit, environment, parents notified, "
        "record complete: each with its evidence (docs/compliance.md); null if it could not "
        "be computed"
    )


class RecordOut(Out):
    episode_id: str
    version: int = Field(description="send it back with the next save (0: never saved)")
    record: IncidentRecord
    missing: list[str] = Field(description="RECORD/NOTIFY fields still empty")
    updated_at: datetime | None
    updated_by: str | None


def unstorable_fields(record: IncidentRecord) -> list[str]:
    """The record's text fields holding characters no database should get: control
    characters other than tab and line breaks (PostgreSQL refuses NUL outright) and lone
    surrogates (not UTF-8 at all)."""
    bad = []
    for name, value in record.model_dump().items():
        if isinstance(value, str) and any(
            unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in value
        ):
            bad.append(name)
    return bad


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=2**31 - 1)
    record: IncidentRecord

    @model_validator(mode="after")
    def _storable(self) -> RecordIn:
        bad = unstorable_fields(self.record)
        if bad:
            raise ValueError(f"control characters are not allowed in {', '.join(bad)}")
        at = self.record.parent_notified_at
        try:
            if at is not None:
                at.astimezone(UTC)  # stored in UTC: year 1 at +01:00 has no UTC time
        except OverflowError:
            raise ValueError("parent_notified_at is out of range") from None
        return self


class RoomRegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(None, max_length=60)
    student_band: StudentBand | None = None


class AuditOut(Out):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, e: StoredAuditEntry) -> AuditOut:
        return cls(
            seq=e.seq,
            at=as_utc(e.at),
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            detail=e.detail,
            hash=e.hash,
        )


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")

    p256dh: str = Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")
    auth: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_=-]+$")


class PushSubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # browsers add expirationTime

    endpoint: HttpUrl = Field(max_length=1000)
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _push_service(cls, url: HttpUrl) -> HttpUrl:
        """The collector POSTs to this URL: an https push service, never an internal address
        (plain http only to this machine itself, for a local test push service)."""
        host = (url.host or "").strip("[]")
        if url.scheme == "http" and host in ("localhost", "127.0.0.1", "::1"):
            return url
        if url.scheme != "https":
            raise ValueError("a push endpoint is an https URL of the browser's push service")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return url  # a name: push services are public names
        if not address.is_global:
            raise ValueError("a push endpoint may not point at a private or local address")
        return url


class PushUnsubscribe(BaseModel):
    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=1, max_length=1000)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    user_id: str | None = Field(None, max_length=64, description="default: yourself")


class TokenOut(Out):
    id: str
    name: str
    user_id: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    token: str | None = Field(None, description="the secret, shown once, when it is issued")


class MeOut(Out):
    user_id: str
    username: str
    display_name: str
    role: str
