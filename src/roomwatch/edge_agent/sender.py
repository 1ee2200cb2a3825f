"""Streams the outbox to the broker, in order, and replays it when the broker may have lost it.

Replay (from the oldest message the collector has not acknowledged) happens
when the agent starts, whenever a reconnect finds no session on the broker
(a restarted broker may have lost what it had queued for the collector), and
when the collector's acknowledgement stalls while messages are outstanding
(it may have missed them while it was away or resubscribing; a broker also
caps what it queues for an absent client). Stall replays back off from
``stall_s`` to ten minutes, so a long collector outage does not multiply
duplicates. Replayed duplicates are harmless; the collector drops them by id.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from roomwatch.edge_agent.outbox import Outbox

log = logging.getLogger(__name__)


class Link(Protocol):
    connected: threading.Event

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishInfo: ...


class PublishInfo(Protocol):
    def is_published(self) -> bool: ...

    def wait_for_publish(self, timeout: float | None = None) -> None: ...


class OutboxSender:
    def __init__(self, outbox: Outbox, link: Link, window: int = 200, stall_s: float = 15) -> None:
        self._outbox = outbox
        self._link = link
        self._window = window
        self._stall_first = stall_s
        self._stall_s = stall_s
        self._ack_seen = outbox.acked
        self._ack_moved_at = time.monotonic()
        self.stall_replays = 0
        self._pending = threading.Event()
        self._replay = threading.Event()
        self._replay.set()  # on start: everything not yet acknowledged
        self.cursor = outbox.acked  # the highest sequence number handed to the broker
        self.sent = 0

    def notify(self) -> None:
        """A new message is in the outbox."""
        self._pending.set()

    def replay(self) -> None:
        """Send everything unacknowledged again (the broker lost our session)."""
        self._replay.set()
        self._pending.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._step(stop)
            except Exception:
                log.exception("outbox sender failed; retrying")
                stop.wait(1)

    def _check_stall(self) -> None:
        now = time.monotonic()
        acked = self._outbox.acked
        if acked != self._ack_seen:
            self._ack_seen, self._ack_moved_at, self._stall_s = acked, now, self._stall_first
            return
        if self.cursor > acked and now - self._ack_moved_at >= self._stall_s:
            log.warning(
                "no acknowledgement past %d for %.0f s with %d message(s) outstanding: replaying",
                acked,
                now - self._ack_moved_at,
                self.cursor - acked,
            )
            self.stall_replays += 1
            self._ack_moved_at = now
            self._stall_s = min(self._stall_s * 2, 600)
            self._replay.set()

    def _step(self, stop: threading.Event) -> None:
        if not self._link.connected.wait(0.5):
            return
        self._check_stall()
        if self._replay.is_set():
            self._replay.clear()
            self.cursor = self._outbox.acked
            log.info(
                "sending the outbox from sequence %d (%d waiting)",
                self.cursor + 1,
                len(self._outbox),
            )
        self._pending.clear()  # cleared before reading, so a notify after the read is not lost
        rows = self._outbox.after(max(self.cursor, self._outbox.acked), self._window)
        if not rows:
            self._pending.wait(1.0)
            return
        last: PublishInfo | None = None
        for row in rows:
            if stop.is_set() or not self._link.connected.is_set():
                return  # the rest goes after the reconnect
            last = self._link.publish(row.topic, row.payload, qos=1)
            self.cursor = row.seq
            self.sent += 1
        # Keep paho's in-memory queue to one window: wait for the window's last PUBACK,
        # in slices, so a lost connection is noticed at once.
        deadline = time.monotonic() + 5
        while self._link.connected.is_set() and time.monotonic() < deadline:
            try:
                if last is None or last.is_published():
                    return
                last.wait_for_publish(timeout=0.2)
            except (RuntimeError, ValueError):
                return  # not queued (disconnected): the replay after reconnect covers it
