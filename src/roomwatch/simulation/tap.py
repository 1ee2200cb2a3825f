"""What the collector has received so far, so the simulation knows when it may move the clock.

The simulation never sleeps to let messages arrive: it waits on this tap's
condition until the collector has seen every sequence number each agent's
outbox holds, and every status it should have been told.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import Clock

RoomKey = tuple[str, str]


class SimulationError(RuntimeError):
    """The simulated system did not do something it always should (a stuck broker, a bug)."""


class Tap:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._upto: dict[RoomKey, int] = {}  # every seq up to this one has been received
        self._ahead: dict[RoomKey, set[int]] = {}  # received out of order, above the mark
        self._statuses: dict[RoomKey, int] = {}

    def saw(self, topic: str, payload: bytes) -> None:
        """Called on the collector's network thread after it handled a message. Never raises."""
        try:
            parsed = wire.parse_topic(topic)
            key = (parsed.site, parsed.room)
            body = json.loads(payload)
        except (ValueError, TypeError):
            return
        if not isinstance(body, dict):
            return
        with self._cond:
            seq = body.get("seq")
            if parsed.kind is wire.Kind.STATUS:
                self._statuses[key] = self._statuses.get(key, 0) + 1
            elif isinstance(seq, int) and not isinstance(seq, bool):
                ahead = self._ahead.setdefault(key, set())
                ahead.add(seq)
                upto = self._upto.get(key, -1)
                while upto + 1 in ahead:
                    upto += 1
                    ahead.discard(upto)
                self._upto[key] = upto
            self._cond.notify_all()

    def upto(self, key: RoomKey) -> int:
        with self._cond:
            return self._upto.get(key, -1)

    def statuses(self, key: RoomKey) -> int:
        with self._cond:
            return self._statuses.get(key, 0)

    def wait(self, predicate: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        """Block until ``predicate`` holds (re-checked on every message), or fail saying what."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise SimulationError(f"gave up after {timeout:g} s waiting for {what()}")


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, event: threading.Event
) -> None:
    """Wait for a state that no message announces (a sender drained, a link dropped):
    re-check each time ``event`` is set, or every 5 ms."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            raise SimulationError(f"gave up after {timeout:g} s waiting for {what}")
        event.wait(min(left, 0.005))


class SimCollector(Collector):
    """The real collector; every message it handles is also shown to the tap."""

    def __init__(self, config: CollectorConfig, clock: Clock, tap: Tap) -> None:
        self._tap = tap
        super().__init__(config, clock)

    def on_message(self, topic: str, payload: bytes) -> None:
        super().on_message(topic, payload)
        self._tap.saw(topic, payload)
