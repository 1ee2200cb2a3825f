"""Every alert type has exactly one owner that raises and resolves it.

``reconcile`` only acts on the types its caller owns: a type added to the
vocabulary (core/wire.py) and to no owner's set would be filtered out and never
fire, with no error (issue 15). The collector's room rules own ``ROOM_TYPES``;
the compliance deadline check owns ``COMPLIANCE_TYPES``.
"""

from __future__ import annotations

from roomwatch.compliance.deadlines import COMPLIANCE_TYPES
from roomwatch.core.room_view import ROOM_TYPES
from roomwatch.core.rules import TELEMETRY_TYPES
from roomwatch.core.wire import AlertType


def test_every_alert_type_has_exactly_one_owner() -> None:
    assert not ROOM_TYPES & COMPLIANCE_TYPES, "two owners would resolve each other's alerts"
    assert set(AlertType) == ROOM_TYPES | COMPLIANCE_TYPES, "a type no one raises"


def test_what_one_telemetry_shows_is_owned_by_the_room_rules() -> None:
    assert TELEMETRY_TYPES <= ROOM_TYPES
