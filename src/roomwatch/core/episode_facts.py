"""The facts of one episode that its verdict (core/verdict.py) is judged from. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.policy.model import PolicyProfile, StudentBand


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry row taken during the episode (None: the sensor could not say)."""

    ts: datetime
    temperature_c: float | None = None
    lux: float | None = None
    co2_ppm: float | None = None
    door_locked: bool | None = None
    staff_present: bool | None = None


@dataclass(frozen=True, slots=True)
class EventFact:
    ts: datetime
    type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertFact:
    alert_id: str
    type: str
    raised_at: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    profile: PolicyProfile
    calendar: SchoolCalendar
    band: StudentBand | None = None
    checkpoint_count: int = 0
    readings: Sequence[Reading] = ()
    events: Sequence[EventFact] = ()
    alerts: Sequence[AlertFact] = ()
    record: IncidentRecord = field(default_factory=IncidentRecord)
    record_version: int = 0
    record_updated_by: str | None = None
    record_updated_at: datetime | None = None
    #: Readings further apart than this leave the stretch between them unvouched for.
    max_gap_s: float = 30.0
