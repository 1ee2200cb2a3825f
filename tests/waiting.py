"""The one way tests wait for something outside them (a broker, a database, a thread):
a condition with a timeout. Time-based behaviour never waits; it runs on the VirtualClock."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Check ``predicate`` until it holds or ``timeout`` passes; its last answer.

    Brokers, databases and sockets have no event to wait on from outside, so this polls:
    ``interval`` is only how often to look, never a stand-in for an ordering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
