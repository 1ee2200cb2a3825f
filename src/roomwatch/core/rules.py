"""Alert rules, pure: from what a room reports to which alerts must be open.

The collector is the authority for alerts; this module is the logic, the
collector the shell. :func:`telemetry_conditions` says which conditions hold
in one telemetry message; :func:`reconcile` compares them with the alerts
already open for that room and returns the lifecycle steps to take: raise
the new, resolve the cleared, leave the rest (one open alert per site, room, type,
episode and subject: :data:`AlertKey`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from roomwatch.core.alert_types import TELEMETRY_TYPES as TELEMETRY_TYPES  # from the one table
from roomwatch.core.policy.model import PolicyProfile, Range
from roomwatch.core.wire import AlertState, AlertType, Severity, Telemetry, format_ts


@dataclass(frozen=True, slots=True)
class EnvironmentLimits:
    """The limits that apply to one room: the profile's, with the room's overrides."""

    temperature_c: Range
    lux_min: float | None
    co2_max_ppm: float | None
    seclusion_allowed: bool

    @classmethod
    def from_profile(cls, profile: PolicyProfile) -> EnvironmentLimits:
        env = profile.environment
        return cls(env.temperature_c, env.lux_min, env.co2_max_ppm, profile.seclusion_allowed)


@dataclass(frozen=True, slots=True)
class Condition:
    """An alert-worthy fact that holds now."""

    type: AlertType
    severity: Severity
    message: str
    episode_id: str | None
    subject: str | None = None  # what within the episode: a checkpoint occurrence, a sensor
    due_at: datetime | None = None  # when it began to hold, where that is known exactly


def telemetry_conditions(t: Telemetry, limits: EnvironmentLimits) -> list[Condition]:
    """Every condition in ``TELEMETRY_TYPES`` that telemetry ``t`` shows."""
    found: list[Condition] = []
    possibly_occupied = t.occupied is not False or t.episode_id is not None
    if t.door_locked is True and possibly_occupied:
        who = "occupied" if t.occupied else "possibly occupied (occupancy unknown)"
        found.append(
            Condition(
                AlertType.DOOR_LOCKED_WHILE_OCCUPIED,
                Severity.CRITICAL,
                f"Door locked while the room is {who}: open it now.",
                t.episode_id,
            )
        )
    in_episode = t.episode_id is not None
    if (
        not limits.seclusion_allowed
        and in_episode
        and t.door_closed is True
        and t.staff_present is False
    ):
        found.append(
            Condition(
                AlertType.SECLUSION_PROHIBITED,
                Severity.CRITICAL,
                "Door closed with no staff present: seclusion is prohibited here.",
                t.episode_id,
            )
        )
    if t.occupied is True or in_episode:
        found.extend(_environment(t, limits))
    return found


def _environment(t: Telemetry, limits: EnvironmentLimits) -> list[Condition]:
    found = []
    if t.temperature_c is not None and not limits.temperature_c.contains(t.temperature_c):
        r = limits.temperature_c
        found.append(
            Condition(
                AlertType.TEMPERATURE_OUT_OF_RANGE,
                Severity.WARNING,
                f"Temperature {t.temperature_c:.1f} °C is outside {r.min}-{r.max} °C.",
                t.episode_id,
            )
        )
    if limits.lux_min is not None and t.lux is not None and t.lux < limits.lux_min:
        found.append(
            Condition(
                AlertType.LIGHT_BELOW_MINIMUM,
                Severity.WARNING,
                f"Light {t.lux:.0f} lux is below the minimum of {limits.lux_min:.0f} lux.",
                t.episode_id,
            )
        )
    if limits.co2_max_ppm is not None and t.co2_ppm is not None and t.co2_ppm > limits.co2_max_ppm:
        found.append(
            Condition(
                AlertType.VENTILATION_POOR,
                Severity.WARNING,
                f"CO2 {t.co2_ppm:.0f} ppm is above {limits.co2_max_ppm:.0f} ppm: ventilate.",
                t.episode_id,
            )
        )
    return found


# --------------------------------------------------------------- alert book


AlertKey = tuple[str, str, AlertType, str | None, str | None]  # site, room, type, episode, subject


@dataclass(frozen=True, slots=True)
class OpenAlert:
    alert_id: str
    site: str
    room: str
    type: AlertType
    severity: Severity
    state: AlertState
    episode_id: str | None
    raised_at: datetime
    message: str
    late: bool = False
    subject: str | None = None
    tier: int = 1  # the highest tier of recipients notified so far
    notified_at: datetime | None = None  # when recipients were last told (collector time)
    acknowledged_by: str | None = None

    @property
    def key(self) -> AlertKey:
        return (self.site, self.room, self.type, self.episode_id, self.subject)


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle step to store and publish."""

    alert: OpenAlert
    state: AlertState
    at: datetime
    by: str | None = None  # who, for an acknowledgement


def alert_id(
    site: str, room: str, type_: AlertType, raised_at: datetime, subject: str | None = None
) -> str:
    what = f"{type_.value}.{subject}" if subject else type_.value
    return f"{site}.{room}.{what}.{format_ts(raised_at)}"


def reconcile(
    open_alerts: Mapping[AlertKey, OpenAlert],
    site: str,
    room: str,
    conditions: Iterable[Condition],
    owned: frozenset[AlertType],
    at: datetime,
    late: bool = False,
) -> list[Transition]:
    """Raise what newly holds, resolve what no longer does, among the ``owned`` types.

    ``at`` is the time the facts describe (the message's own timestamp, so a
    message that arrives late is judged by when it happened).
    """
    transitions: list[Transition] = []
    current = {
        (site, room, c.type, c.episode_id, c.subject): c for c in conditions if c.type in owned
    }
    for key, condition in current.items():
        if key not in open_alerts:
            # A time rule is raised at its due time: held while the room seemed empty, it
            # goes out later but says when it really fell due.
            raised_at = condition.due_at or at
            alert = OpenAlert(
                alert_id(site, room, condition.type, raised_at, condition.subject),
                site,
                room,
                condition.type,
                condition.severity,
                AlertState.RAISED,
                condition.episode_id,
                raised_at,
                condition.message,
                late,
                condition.subject,
            )
            transitions.append(Transition(alert, AlertState.RAISED, raised_at))
    for key, alert in open_alerts.items():
        if key[0] == site and key[1] == room and alert.type in owned and key not in current:
            resolved = replace(alert, state=AlertState.RESOLVED)
            # A replayed older message may clear it: never before it was raised.
            transitions.append(Transition(resolved, AlertState.RESOLVED, max(at, alert.raised_at)))
    return transitions
