"""What a faulty sensor blinds, and so how serious its ``sensor_fault`` is. Pure.

The agent names the sensor in each ``sensor_fault`` event: the sampled
sensors by their role (``temperature``, ``light``, ``co2``; see
``edge_agent.agent.TELEMETRY_FIELDS``), the occupancy sensors by the state
machine's input (``presence``, ``camera``). A blind occupancy, door, lock or
staff sensor leaves the safety rules guessing while a student may be inside
(the agent then counts the room as occupied and keeps the lock released, but
nobody is told if the student is alone or the door is shut); a blind
thermometer or CO2 chip only leaves the room's conditions unmeasured, which
matters for the record and builds over hours, not seconds.

docs/alerts.md shows this table; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from roomwatch.core.room import Input
from roomwatch.core.wire import Severity


class SensorRole(StrEnum):
    SAFETY = "safety"  # the lock, lapse and occupancy rules read it
    ENVIRONMENT = "environment"  # only the room-condition rules read it


#: Every sensor name an agent reports in ``sensor_fault``, and what its fault blinds.
#: A name not here counts as safety: we cannot know what it blinds.
SENSOR_ROLES: Mapping[str, SensorRole] = MappingProxyType(
    {
        Input.MOTION.value: SensorRole.SAFETY,
        Input.PRESENCE.value: SensorRole.SAFETY,
        Input.CAMERA.value: SensorRole.SAFETY,
        Input.DOOR_CLOSED.value: SensorRole.SAFETY,
        Input.DOOR_LOCK.value: SensorRole.SAFETY,
        Input.STAFF.value: SensorRole.SAFETY,
        "temperature": SensorRole.ENVIRONMENT,
        "light": SensorRole.ENVIRONMENT,
        "co2": SensorRole.ENVIRONMENT,
        "humidity": SensorRole.ENVIRONMENT,
    }
)


def role_of(sensor: str) -> SensorRole:
    """The sensor's role; an unknown name is safety."""
    return SENSOR_ROLES.get(sensor, SensorRole.SAFETY)


def fault_severity(sensor: str, episode_open: bool) -> Severity:
    """Critical only for a safety sensor during an episode; a warning otherwise."""
    if episode_open and role_of(sensor) is SensorRole.SAFETY:
        return Severity.CRITICAL
    return Severity.WARNING
