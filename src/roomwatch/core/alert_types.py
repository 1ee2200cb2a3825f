"""Which rules own each alert type: the one table the alert-type sets derive from. Pure.

``reconcile`` (core/rules.py) acts only on the types its caller owns, and resolves
what no longer holds among them: a type no one owns would be filtered out and never
fire, with no error; a type two owners claimed would be resolved by each for want of
the other's condition. So every :class:`AlertType` has exactly one owner here, and
importing this module fails if one has none (issue 15).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from roomwatch.core.wire import AlertType


class Owner(StrEnum):
    """Who raises and resolves a type."""

    ROOM = "room"  # the collector's room view (core/room_view.py), per message and tick
    COMPLIANCE = "compliance"  # the deadline check (compliance/deadlines.py), periodic


@dataclass(frozen=True, slots=True)
class Ownership:
    owner: Owner
    #: One telemetry message alone shows it (core/rules.py:telemetry_conditions).
    telemetry: bool = False


_ROOM = Ownership(Owner.ROOM)
_TELEMETRY = Ownership(Owner.ROOM, telemetry=True)
_COMPLIANCE = Ownership(Owner.COMPLIANCE)

OWNERSHIP: Mapping[AlertType, Ownership] = MappingProxyType(
    {
        AlertType.DOOR_LOCKED_WHILE_OCCUPIED: _TELEMETRY,
        AlertType.SECLUSION_PROHIBITED: _TELEMETRY,
        AlertType.TEMPERATURE_OUT_OF_RANGE: _TELEMETRY,
        AlertType.LIGHT_BELOW_MINIMUM: _TELEMETRY,
        AlertType.VENTILATION_POOR: _TELEMETRY,
        AlertType.TIME_LIMIT_WARNING: _ROOM,
        AlertType.TIME_LIMIT_EXCEEDED: _ROOM,
        AlertType.CHECKPOINT_DUE: _ROOM,
        AlertType.MONITORING_LAPSE: _ROOM,
        AlertType.SENSOR_FAULT: _ROOM,
        AlertType.AGENT_OFFLINE: _ROOM,
        AlertType.CLOCK_SKEW: _ROOM,
        AlertType.PARENT_NOTIFICATION_OVERDUE: _COMPLIANCE,
        AlertType.RECORD_INCOMPLETE: _COMPLIANCE,
        AlertType.FREQUENT_USE: _COMPLIANCE,
    }
)


class OwnershipError(Exception):
    """The table leaves a type without an owner, or says telemetry shows a type the room
    rules do not own (the room view is what reads telemetry)."""


def check(
    table: Mapping[AlertType, Ownership] | Mapping[str, Ownership],
    vocabulary: type[StrEnum] = AlertType,
) -> None:
    """Raise :class:`OwnershipError` unless every type of ``vocabulary`` has an owner in
    ``table``, the table names nothing else, and only room types are read off telemetry."""
    known = {t.value for t in vocabulary}
    unowned = sorted(known - {str(t) for t in table})
    unknown = sorted({str(t) for t in table} - known)
    stray = sorted(str(t) for t, o in table.items() if o.telemetry and o.owner is not Owner.ROOM)
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("alert types with no owner (they would never fire)", unowned),
            ("owned types not in the vocabulary", unknown),
            ("telemetry types not owned by the room rules", stray),
        )
        if names
    ]
    if problems:
        raise OwnershipError("; ".join(problems))


def owned_by(owner: Owner) -> frozenset[AlertType]:
    return frozenset(t for t, o in OWNERSHIP.items() if o.owner is owner)


check(OWNERSHIP)

#: Every type the room's view decides (core/room_view.py).
ROOM_TYPES: frozenset[AlertType] = owned_by(Owner.ROOM)
#: The types the compliance deadline check decides (compliance/deadlines.py).
COMPLIANCE_TYPES: frozenset[AlertType] = owned_by(Owner.COMPLIANCE)
#: The room types whose condition can be read off one telemetry message (core/rules.py).
TELEMETRY_TYPES: frozenset[AlertType] = frozenset(t for t, o in OWNERSHIP.items() if o.telemetry)
