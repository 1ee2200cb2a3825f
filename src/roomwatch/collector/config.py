"""The collector's configuration: strict like the agent's; every field has a default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
import tzlocal
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.claimed_time import DEFAULT_AHEAD_S, DEFAULT_BEHIND_S, TimeWindow
from roomwatch.core.policy import StudentBand, available_profiles
from roomwatch.firmware_config.mqtt import MqttSettings


def _known_profile(value: str) -> str:
    if value not in available_profiles():
        raise ValueError(f"unknown policy profile {value!r}")
    return value


#: A policy profile id that exists (roomwatch policies list).
ProfileName = Annotated[str, AfterValidator(_known_profile)]


def default_database_url() -> str:
    """SQLite in the user's data directory (e.g. ~/.local/share/roomwatch/collector.db)."""
    return f"sqlite:///{default_data_dir() / 'collector.db'}"


class RoomRegistration(BaseModel):
    """What the collector knows about a room beyond what its agent reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: ProfileName | None = Field(
        None, description="Overrides the profile the agent reports."
    )
    student_band: StudentBand | None = Field(
        None, description="elementary or secondary, where the profile's limits differ by band."
    )


class NotifySettings(BaseModel):
    """Who hears about alerts beyond the MQTT alerts topic, by tier (Apprise URLs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[list[str]] = Field(
        default_factory=list,
        description="Apprise URLs per tier: tiers[0] hear every alert, tiers[1] hear critical "
        "alerts nobody acknowledged in time, ... (e.g. mailto://, ntfy://, json://).",
    )
    escalate_after_s: float = Field(
        60, gt=0, le=3600, description="A critical alert unacknowledged this long escalates."
    )
    repeat_every_s: float = Field(
        60, gt=0, le=3600, description="Then it is repeated this often until acknowledged."
    )


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("roomwatch"))


class WebSettings(BaseModel):
    """The staff web app (docs/web.md): served by ``roomwatch collector`` on its own port,
    apart from /healthz and /metrics, so that those can stay on an internal address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Serve the web app.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0: every address).")
    port: int = Field(8080, ge=0, le=65535, description="Port (0: any free port).")
    session_hours: float = Field(
        12, gt=0, le=24 * 30, description="A sign-in lasts this long (a school day, by default)."
    )
    secure_cookies: bool | None = Field(
        None,
        description="Mark the session cookie Secure. Default: when the request came over "
        "HTTPS (directly or as X-Forwarded-Proto from a trusted proxy).",
    )
    vapid_key_file: Path | None = Field(
        None,
        description="The Web Push (VAPID) private key, made on first start if missing. "
        "Default: vapid_private_key.pem in the user data directory.",
    )
    vapid_subject: str = Field(
        "mailto:roomwatch-admin@localhost",
        pattern=r"^(mailto:|https://)",
        description="Who push services contact about this sender (mailto: or https: URL).",
    )

    def vapid_path(self) -> Path:
        return self.vapid_key_file or default_data_dir() / "vapid_private_key.pem"


# ----------------------------------------------------------- compliance (docs/compliance.md)


def host_calendar() -> SchoolCalendar:
    """Mon-Fri, school ends 15:30, no holidays, in this machine's time zone."""
    try:
        zone = tzlocal.get_localzone_name() or "UTC"
        return SchoolCalendar(timezone=zone)
    except (ValueError, LookupError, OSError):
        return SchoolCalendar()


MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]


class ComplianceSettings(BaseModel):
    """The periodic check behind parent_notification_overdue, record_incomplete and
    frequent_use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_every_s: float = Field(60, ge=5, le=3600, description="How often deadlines are checked.")
    lookback_days: int = Field(
        30, ge=1, le=400, description="Episodes started this far back are checked for deadlines."
    )


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    telemetry_raw_days: int | None = Field(
        30,
        ge=1,
        le=3650,
        description="Per-reading telemetry older than this is replaced by per-minute "
        "aggregates; null keeps every reading.",
    )
    every_h: float = Field(24, gt=0, le=24 * 7, description="How often the job runs.")


ReportKindName = Literal["environment", "episodes", "students", "district"]
ReportFormatName = Literal["csv", "json", "pdf"]


def _district_only() -> list[ReportKindName]:
    return ["district"]


def _pdf_and_csv() -> list[ReportFormatName]:
    return ["pdf", "csv"]


class ReportDelivery(BaseModel):
    """Quarterly and annual reports sent ahead of their due dates (POLICIES.md REVIEW)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipients: list[str] = Field(
        default_factory=list, description="Apprise URLs (mailto://, json://, ...); empty: off."
    )
    kinds: list[ReportKindName] = Field(default_factory=_district_only, min_length=1)
    formats: list[ReportFormatName] = Field(default_factory=_pdf_and_csv, min_length=1)
    site: str | None = Field(None, description="One site's reports; null: the whole district.")
    lead_days: int = Field(7, ge=0, le=60, description="Sent this many days before the due date.")
    profile: ProfileName | None = Field(
        None,
        description="Whose due dates (reporting.quarterly_due/annual_due); null: default_profile.",
    )
    quarterly_due: list[MonthDay] | None = Field(
        None, description="MM-DD dates overriding the profile's quarterly due dates."
    )
    annual_due: MonthDay | None = Field(
        None, description="MM-DD date overriding the profile's annual due date."
    )


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "collector-1",
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
        description="This collector's name; its MQTT client id is roomwatch-<name>.",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL: sqlite:///PATH (default, WAL) or postgresql+psycopg://...",
    )
    share_group: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Join a shared subscription group ($share/<group>/...) with other collectors.",
    )
    default_profile: ProfileName = Field(
        "default", description="Profile for a room until its agent reports one."
    )
    late_after_s: float = Field(
        30, gt=0, description="A message older than this on arrival is judged late."
    )
    gap_grace_s: float = Field(
        60,
        gt=0,
        description="A hole in an agent's sequence open this long is reported "
        "(it is never skipped: the agent still holds the missing messages and replays them).",
    )
    telemetry_interval_s: float = Field(
        10,
        gt=0,
        le=600,
        description="The agents' telemetry cadence; silence for 2.5 of these is agent_offline.",
    )
    tick_s: float = Field(1, gt=0, le=60, description="How often time-based rules are evaluated.")
    # Time and order (docs/wire-protocol.md): a claimed time outside this window around the
    # collector's clock is kept, flagged, and judged by arrival time; clock_skew is raised.
    clock_behind_s: float = Field(
        DEFAULT_BEHIND_S,
        gt=0,
        description="How far behind the collector's clock a message's time may be and still "
        "be believed: the agents' longest outbox backlog (default 14 days).",
    )
    clock_ahead_s: float = Field(
        DEFAULT_AHEAD_S,
        gt=0,
        le=86400,
        description="How far ahead of the collector's clock a message's time may be and "
        "still be believed (clock skew and latency; default 120 s).",
    )
    dead_letters_per_agent: int = Field(
        1000,
        ge=0,
        description="Most dead letters kept per room (by topic); beyond it they are counted "
        "(roomwatch_dead_letters_dropped_total), not stored.",
    )
    dead_letters_total: int = Field(
        100_000, ge=0, description="Most dead letters kept in all; beyond it they are counted."
    )
    rooms: dict[str, RoomRegistration] = Field(
        default_factory=dict,
        description="Per room, keyed 'site/room': the profile and student band.",
    )
    notify: NotifySettings = Field(default_factory=NotifySettings)
    http_host: str = Field("127.0.0.1", description="Address for /healthz and /metrics.")
    http_port: int | None = Field(
        9480, ge=0, le=65535, description="Port for /healthz and /metrics; null turns them off."
    )
    batch_max: int = Field(500, ge=1, le=50_000, description="Most rows written in one commit.")
    web: WebSettings = Field(default_factory=WebSettings)
    # Compliance (issue 7; documented in docs/compliance.md).
    school_calendar: SchoolCalendar = Field(
        default_factory=host_calendar,
        description="The school calendar of every site without its own in calendars.",
    )
    calendars: dict[str, SchoolCalendar] = Field(
        default_factory=dict, description="Per site id: that site's school calendar."
    )
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    reports: ReportDelivery = Field(default_factory=ReportDelivery)

    @property
    def time_window(self) -> TimeWindow:
        return TimeWindow(self.clock_behind_s, self.clock_ahead_s)

    def calendar_for(self, site: str) -> SchoolCalendar:
        return self.calendars.get(site, self.school_calendar)
