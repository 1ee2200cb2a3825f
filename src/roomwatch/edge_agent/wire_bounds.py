"""What the wire contract lets telemetry carry: a reading outside it goes as null, loudly.

One bad number must never stop telemetry, nor the tick that feeds the watchdog.
"""

from __future__ import annotations

import logging
from functools import cache

from roomwatch.core import wire

log = logging.getLogger(__name__)


@cache
def contract_bounds(field: str) -> tuple[float | None, float | None]:
    """The wire contract's bounds for a telemetry field (one source of truth: wire.py)."""
    low = high = None
    for constraint in wire.Telemetry.model_fields[field].metadata:
        low = getattr(constraint, "ge", low)
        high = getattr(constraint, "le", high)
    return low, high


def within_contract(field: str, value: float | None, where: str) -> float | None:
    """``value`` if the wire contract can carry it in ``field``, else None (logged)."""
    if value is None:
        return None
    low, high = contract_bounds(field)
    if (low is not None and value < low) or (high is not None and value > high) or value != value:
        log.error(
            "%s: %s reading %r is outside the wire contract; sent as null", where, field, value
        )
        return None
    return value
