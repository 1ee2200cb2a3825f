"""Every alert type has exactly one owner that raises and resolves it.

``reconcile`` only acts on the types its caller owns: a type added to the
vocabulary (core/wire.py) and to no owner's set would be filtered out and never
fire, with no error (issue 15). One table (core/alert_types.py) gives each type
its owner; the collector's room rules own ``ROOM_TYPES``, the compliance deadline
check ``COMPLIANCE_TYPES``, and both sets, with ``TELEMETRY_TYPES``, come from it.
"""

from __future__ import annotations

from enum import StrEnum

import pytest

from roomwatch.compliance.deadlines import COMPLIANCE_TYPES
from roomwatch.core import alert_types
from roomwatch.core.alert_types import OWNERSHIP, Owner, Ownership, OwnershipError
from roomwatch.core.room_view import ROOM_TYPES
from roomwatch.core.rules import TELEMETRY_TYPES
from roomwatch.core.wire import AlertType


def test_every_alert_type_has_exactly_one_owner() -> None:
    assert not ROOM_TYPES & COMPLIANCE_TYPES, "two owners would resolve each other's alerts"
    assert set(AlertType) == ROOM_TYPES | COMPLIANCE_TYPES, "a type no one raises"


def test_what_one_telemetry_shows_is_owned_by_the_room_rules() -> None:
    assert TELEMETRY_TYPES <= ROOM_TYPES


def test_the_owners_sets_are_the_one_tables() -> None:
    assert set(OWNERSHIP) == set(AlertType)
    by_owner = {o: {t for t, own in OWNERSHIP.items() if own.owner is o} for o in Owner}
    assert by_owner[Owner.ROOM] == ROOM_TYPES
    assert by_owner[Owner.COMPLIANCE] == COMPLIANCE_TYPES
    assert {t for t, own in OWNERSHIP.items() if own.telemetry} == TELEMETRY_TYPES
    alert_types.check(OWNERSHIP)


class _Grown(StrEnum):
    """The vocabulary with a type added to wire.AlertType and to no owner."""

    DOOR_LOCKED_WHILE_OCCUPIED = "door_locked_while_occupied"
    BATTERY_LOW = "battery_low"


def test_a_type_without_an_owner_is_an_error_not_a_silence() -> None:
    table: dict[str, Ownership] = {
        "door_locked_while_occupied": Ownership(Owner.ROOM, telemetry=True)
    }
    with pytest.raises(OwnershipError, match=r"no owner.*battery_low"):
        alert_types.check(table, _Grown)
    alert_types.check({**table, "battery_low": Ownership(Owner.ROOM)}, _Grown)


def test_the_table_names_only_the_vocabulary_and_telemetry_only_for_the_room() -> None:
    grown = {str(t): own for t, own in OWNERSHIP.items()}
    with pytest.raises(OwnershipError, match=r"not in the vocabulary.*battery_low"):
        alert_types.check({**grown, "battery_low": Ownership(Owner.ROOM)})
    stray = {**OWNERSHIP, AlertType.FREQUENT_USE: Ownership(Owner.COMPLIANCE, telemetry=True)}
    with pytest.raises(OwnershipError, match=r"telemetry types not owned.*frequent_use"):
        alert_types.check(stray)
