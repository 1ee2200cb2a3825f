"""Wire contract, version 1: topics and message bodies, used by every side.

Topics form one tree, ``roomwatch/v1/<site>/<room>/<kind>``. Every body is a
flat JSON object: the envelope (``v``, ``id``, ``seq`` for agent messages,
``ts``, ``site``, ``room``) and, beside it, the fields of its kind.

Decoding never raises: :func:`decode` returns either a :class:`Decoded` or an
:class:`Invalid` naming the field at fault, so a malformed message can be
logged, counted and dead-lettered without touching the caller's thread.

Conventions chosen here (see docs/wire-protocol.md):

* Unknown fields are rejected (except on ``event``, whose types carry fields of
  their own): a typo never passes silently. Upgrade collectors before agents.
* A sensor reading the agent cannot vouch for is ``null``: ``occupied: null``
  means "unknown", which every rule treats as occupied (DESIGN.md principle 3).
* ``status`` carries ``seq: null``: the last will is composed at connect time
  and published by the broker only if the agent dies, so it cannot hold a
  place in the agent's sequence without leaving a false gap.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    model_validator,
)

WIRE_VERSION = 1
TOPIC_ROOT = "roomwatch"
TOPIC_VERSION = f"v{WIRE_VERSION}"

#: Site and room ids: lower-case letters, digits and hyphens (DESIGN.md).
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)

#: Largest body we accept; anything bigger is dead-lettered unread. The broker configs
#: (docs/operations.md, tests/conftest.py) set Mosquitto's message_size_limit to it.
MAX_PAYLOAD_BYTES = 64 * 1024
_NUL_ESCAPE = b"\\u0000"


class Kind(StrEnum):
    """The last topic level: what a message is."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EPISODE = "episode"
    EVENT = "event"
    ALERTS = "alerts"
    CMD = "cmd"
    ACK = "ack"


#: Kinds an agent publishes (and the collector subscribes to).
AGENT_KINDS: tuple[Kind, ...] = (Kind.STATUS, Kind.TELEMETRY, Kind.EPISODE, Kind.EVENT)
#: Kinds the collector publishes (and agents or staff devices subscribe to).
COLLECTOR_KINDS: tuple[Kind, ...] = (Kind.ALERTS, Kind.CMD, Kind.ACK)


class AlertType(StrEnum):
    """The shared alert vocabulary (DESIGN.md)."""

    DOOR_LOCKED_WHILE_OCCUPIED = "door_locked_while_occupied"
    MONITORING_LAPSE = "monitoring_lapse"
    TIME_LIMIT_WARNING = "time_limit_warning"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    CHECKPOINT_DUE = "checkpoint_due"
    SECLUSION_PROHIBITED = "seclusion_prohibited"
    TEMPERATURE_OUT_OF_RANGE = "temperature_out_of_range"
    LIGHT_BELOW_MINIMUM = "light_below_minimum"
    VENTILATION_POOR = "ventilation_poor"
    SENSOR_FAULT = "sensor_fault"
    AGENT_OFFLINE = "agent_offline"
    PARENT_NOTIFICATION_OVERDUE = "parent_notification_overdue"
    RECORD_INCOMPLETE = "record_incomplete"
    FREQUENT_USE = "frequent_use"
    CLOCK_SKEW = "clock_skew"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class EpisodeEvent(StrEnum):
    STARTED = "started"
    ENDED = "ended"
    CHECKPOINT = "checkpoint"


class CommandAction(StrEnum):
    START_EPISODE = "start_episode"
    END_EPISODE = "end_episode"
    STAFF_CHECKIN = "staff_checkin"
    RELOAD_CONFIG = "reload_config"


# --------------------------------------------------------------------------- time

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def format_ts(value: datetime) -> str:
    """RFC 3339, UTC, milliseconds, ``Z``: ``2026-11-23T08:15:02.125Z``."""
    if value.tzinfo is None:
        raise ValueError("timestamps on the wire must be timezone-aware")
    utc = value.astimezone(UTC)
    # Not strftime("%Y"): glibc writes year 1 as "1", which parse_ts (rightly) refuses, so a
    # message from year 1 would be stored in a form that cannot be read back.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_ts(value: object) -> datetime:
    """Accept exactly the wire form (or an aware datetime from Python code)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _TS_RE.match(value):
        raise ValueError(
            "timestamp must be RFC 3339 UTC with milliseconds, e.g. 2026-01-05T08:00:00.000Z"
        )
    return datetime.fromisoformat(value[:-1] + "+00:00")


def _truncate_ms(value: datetime) -> datetime:
    """Drop sub-millisecond precision so a round trip is exact."""
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


UtcTimestamp = Annotated[
    datetime,
    BeforeValidator(lambda v: _truncate_ms(parse_ts(v))),
    PlainSerializer(format_ts, return_type=str, when_used="always"),
]
SiteId = Annotated[str, Field(pattern=ID_PATTERN, description="Site id: a-z, 0-9, hyphens.")]
RoomId = Annotated[str, Field(pattern=ID_PATTERN, description="Room id: a-z, 0-9, hyphens.")]
MessageId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
#: Episode ids read <site>.<room>.<start stamp>; alert ids <site>.<room>.<type>.<time>.
EpisodeId = Annotated[str, Field(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9._:-]+$")]
AlertId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._:#-]+$")]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]


# ----------------------------------------------------------------------- messages


class Message(BaseModel):
    """The envelope every message carries."""

    # strict: "yes" is not true, "1" is not 1; a sloppy client gets a named error. No NaN or
    # infinities: JSON has none, and PostgreSQL's json type refuses them.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    kind: ClassVar[Kind]
    #: Whether the agent numbers this kind in its sequence.
    sequenced: ClassVar[bool] = False

    v: Literal[1] = Field(1, description="Schema version.")
    id: MessageId = Field(description="Unique message id; duplicates are dropped.")
    ts: UtcTimestamp = Field(description="When the fact happened (UTC, ms).")
    site: SiteId
    room: RoomId

    @model_validator(mode="before")
    @classmethod
    def _reject_non_object(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            raise ValueError("message body must be a JSON object")
        if info.context and info.context.get("from_wire") and "v" not in data:
            # Code may rely on the default; a message on the wire must say its version.
            raise ValueError("v (the schema version) is required on the wire")
        # bools are ints in Python; a boolean seq or v is a client bug.
        for name in ("v", "seq"):
            if isinstance(data.get(name), bool):
                raise ValueError(f"{name} must be an integer, not a boolean")
        return data


class AgentMessage(Message):
    """A message an agent publishes: it carries the agent's sequence number."""

    sequenced: ClassVar[bool] = True
    seq: Seq = Field(description="Per-agent sequence number, increasing, kept across restarts.")


class Telemetry(AgentMessage):
    """The room's readings and the agent's view of it (every N s and on change)."""

    kind: ClassVar[Kind] = Kind.TELEMETRY
    temperature_c: float | None = Field(ge=-55, le=125, description="null when unreadable.")
    lux: float | None = Field(ge=0, le=1_000_000, description="null when unreadable.")
    co2_ppm: float | None = Field(ge=0, le=40_000, description="null when not fitted.")
    occupied: bool | None = Field(description="Fused occupancy; null = unknown = occupied.")
    door_closed: bool | None
    door_locked: bool | None
    staff_present: bool | None
    lock_permit: bool = Field(description="Whether the agent lets an electrified lock hold.")
    episode_id: EpisodeId | None
    vacated_at: UtcTimestamp | None = Field(
        default=None,
        description="An end is pending: no one seen since this moment (the candidate exit), "
        "the room not sealed. Time and lapse alerts due after it are held until the end is "
        "confirmed (dropped) or someone is seen (raised). null: someone is seen, or no episode.",
    )


class Episode(AgentMessage):
    kind: ClassVar[Kind] = Kind.EPISODE
    event: EpisodeEvent
    episode_id: EpisodeId
    started_at: UtcTimestamp
    ended_at: UtcTimestamp | None
    reason: str | None = Field(max_length=200, description="Why it started, ended or paused.")


class Event(AgentMessage):
    """A discrete fact; each type may carry flat fields of its own (JSON scalars)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)
    kind: ClassVar[Kind] = Kind.EVENT
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

    @model_validator(mode="after")
    def _extras_are_scalars(self) -> Event:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float | bool | type(None)):
                raise ValueError(f"event field {name!r} must be a JSON scalar")
            if isinstance(value, str) and len(value) > 500:
                raise ValueError(f"event field {name!r} is longer than 500 characters")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"event field {name!r} must be a finite number")
        return self

    @property
    def fields(self) -> dict[str, Any]:
        """The type's own fields."""
        return dict(self.model_extra or {})


class Status(Message):
    """Retained presence; the last will says offline. Not sequenced (see module doc)."""

    kind: ClassVar[Kind] = Kind.STATUS
    seq: None = Field(None, description="Always null: status is outside the sequence.")
    state: Literal["online", "offline"]
    agent_version: Annotated[str, Field(max_length=40)]
    config_digest: Annotated[str, Field(max_length=80)]
    profile: Annotated[str, Field(max_length=60)]
    acked_seq: Annotated[int, Field(ge=-1, le=2**63 - 1)] = Field(
        -1,
        description="The agent's outbox holds every message above this number (-1: all of them). "
        "A collector that has not seen the agent before owes it nothing at or below it.",
    )


class Alert(Message):
    """An alert's lifecycle step, published by the collector."""

    kind: ClassVar[Kind] = Kind.ALERTS
    alert_id: AlertId
    type: AlertType
    severity: Severity
    state: AlertState
    episode_id: EpisodeId | None
    raised_at: UtcTimestamp
    message: Annotated[str, Field(max_length=500)]
    late: bool = Field(False, description="Raised from data that arrived after an outage.")
    subject: Annotated[str, Field(max_length=80)] | None = Field(
        None, description="What within the episode: a checkpoint occurrence, a sensor."
    )
    tier: Annotated[int, Field(ge=1, le=9)] = Field(1, description="Recipients' tier reached.")
    acknowledged_by: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="The user id (never a name) who acknowledged it."
    )


class Command(Message):
    """A request to an agent, on behalf of a staff member (by user id, never a name)."""

    kind: ClassVar[Kind] = Kind.CMD
    action: CommandAction
    episode_id: EpisodeId | None = None
    by: Annotated[str, Field(max_length=64)] | None = None


class Ack(Message):
    """The highest sequence number up to which the collector stored every message."""

    kind: ClassVar[Kind] = Kind.ACK
    seq: Seq


MODELS: dict[Kind, type[Message]] = {
    m.kind: m for m in (Status, Telemetry, Episode, Event, Alert, Command, Ack)
}


# ------------------------------------------------------------------------- topics


class TopicError(ValueError):
    """A topic that is not in the contract's tree."""


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    room: str
    kind: Kind

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{TOPIC_VERSION}/{self.site}/{self.room}/{self.kind.value}"


def topic(site: str, room: str, kind: Kind | str) -> str:
    """Build a topic, checking each level."""
    for label, value in (("site", site), ("room", room)):
        if not _ID_RE.match(value):
            raise TopicError(f"{label} id {value!r} must be lower-case letters, digits and hyphens")
    return str(Topic(site, room, Kind(kind)))


def parse_topic(name: str) -> Topic:
    """Split a topic into site, room and kind; :class:`TopicError` if it is not ours."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_ROOT or parts[1] != TOPIC_VERSION:
        raise TopicError(f"topic {name!r} is not roomwatch/v1/<site>/<room>/<kind>")
    _, _, site, room, kind = parts
    if not _ID_RE.match(site):
        raise TopicError(f"topic {name!r}: bad site id {site!r}")
    if not _ID_RE.match(room):
        raise TopicError(f"topic {name!r}: bad room id {room!r}")
    try:
        return Topic(site, room, Kind(kind))
    except ValueError:
        raise TopicError(f"topic {name!r}: unknown kind {kind!r}") from None


def subscription(
    kind: Kind | str, site: str = "+", room: str = "+", share: str | None = None
) -> str:
    """A subscription filter, optionally as an MQTT shared subscription."""
    base = f"{TOPIC_ROOT}/{TOPIC_VERSION}/{site}/{room}/{Kind(kind).value}"
    return f"$share/{share}/{base}" if share else base


# ----------------------------------------------------------------- encode, decode


def encode(message: Message) -> bytes:
    """The JSON body of ``message``, compact, UTF-8."""
    return message.model_dump_json(exclude_none=False).encode()


def topic_of(message: Message) -> str:
    return topic(message.site, message.room, message.kind)


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: Topic
    message: Message


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message was rejected; ``field`` is the dotted path at fault, if any."""

    topic: str
    payload: bytes
    reason: str
    field: str | None = None


def _describe(error: ValidationError) -> tuple[str, str | None]:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or None
    more = error.error_count() - 1
    text = str(first["msg"]).removeprefix("Value error, ")
    reason = f"{loc}: {text}" if loc else text
    if more:
        reason += f" (and {more} more)"
    return reason, loc


def decode(topic_name: str, payload: bytes) -> Decoded | Invalid:
    """Parse and validate one MQTT message. Never raises."""
    try:
        where = parse_topic(topic_name)
    except TopicError as exc:
        return Invalid(topic_name, payload, str(exc))
    if len(payload) > MAX_PAYLOAD_BYTES:
        # Before parsing: the size alone decides (the broker's message_size_limit should
        # have stopped it already: docs/operations.md).
        return Invalid(
            topic_name,
            payload,
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes",
        )
    if _NUL_ESCAPE in payload:
        # Valid JSON, but no database text column takes a NUL (PostgreSQL refuses the row,
        # and the whole batch with it): refused here, once, with the reason.
        return Invalid(topic_name, payload, "strings must not contain NUL (\\u0000)")
    model = MODELS[where.kind]
    try:
        message = model.model_validate_json(payload, context={"from_wire": True})
    except ValidationError as exc:
        reason, loc = _describe(exc)
        return Invalid(topic_name, payload, reason, loc)
    except Exception as exc:  # noqa: BLE001 - decoding must never raise, whatever the bytes
        return Invalid(topic_name, payload, f"undecodable payload: {exc}")
    if (message.site, message.room) != (where.site, where.room):
        return Invalid(
            topic_name,
            payload,
            f"body says {message.site}/{message.room} but topic says {where.site}/{where.room}",
            "site" if message.site != where.site else "room",
        )
    return Decoded(where, message)
