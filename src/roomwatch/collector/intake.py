"""The intake: the gate every MQTT message passes on paho's network thread.

Decode (``wire.decode`` never raises), drop what is not an agent's, drop duplicates by
message id, keep a bounded dead letter of what is invalid, count, and hand each admitted
message on. It never raises: an exception here would stop paho's network thread, and with
it every alert (DESIGN.md).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from roomwatch.collector.dead_letters import DeadLetterCaps, DeadRecord, shrink
from roomwatch.collector.observability import Counters
from roomwatch.core import wire
from roomwatch.core.claimed_time import TimeWindow
from roomwatch.core.clock import Clock

log = logging.getLogger(__name__)

#: Message ids remembered for dropping duplicates (a redelivery after a reconnect is far
#: more recent than this; anything older is dropped by the database's key instead).
SEEN_IDS_KEPT = 200_000

Admitted = Callable[[wire.Message, datetime], None]
DeadLettered = Callable[[DeadRecord, datetime], None]


class Intake:
    def __init__(
        self,
        clock: Clock,
        counters: Counters,
        window: TimeWindow,
        caps: DeadLetterCaps,
        *,
        admitted: Admitted,
        dead_lettered: DeadLettered,
        lag: Callable[[float], None] = lambda _s: None,
    ) -> None:
        self._clock = clock
        self._counters = counters
        self._window = window
        self.caps = caps
        self._admitted = admitted
        self._dead_lettered = dead_lettered
        self._lag = lag
        self._seen: OrderedDict[str, None] = OrderedDict()
        #: When the message being handled arrived (time.monotonic()); None between messages.
        self.handling_since: float | None = None

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called on paho's thread for every message. Never raises."""
        now = self._clock.now()
        self._counters.received += 1
        self.handling_since = time.monotonic()
        try:
            result = wire.decode(topic, payload)
            if isinstance(result, wire.Invalid):
                self._counters.invalid += 1
                log.warning("invalid message on %s: %s", result.topic[:200], result.reason[:300])
                self.dead_letter(result, now)
            else:
                self._admit(result.message, topic, now)
        except Exception as exc:
            log.exception("unexpected failure handling a message on %s", topic[:200])
            self.dead_letter(wire.Invalid(topic, payload, f"collector error: {exc}"), now)
        finally:
            self.handling_since = None

    def _admit(self, message: wire.Message, topic: str, now: datetime) -> None:
        if message.kind not in wire.AGENT_KINDS:
            # Not ours to store (a broker that mixes up retained messages, e.g. amqtt 0.12,
            # sends acks too): an ack's seq must never count as a stored message.
            log.debug("ignored a %s message on %s", message.kind.value, topic)
            return
        kind = message.kind.value
        self._counters.by_kind[kind] = self._counters.by_kind.get(kind, 0) + 1
        if self._window.skew(message.ts, now) is None:  # a year-1 ts would skew the sum
            self._lag(max(0.0, (now - message.ts).total_seconds()))
        if message.id in self._seen:
            self._counters.duplicates += 1
            return
        self._seen[message.id] = None
        if len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)
        self._admitted(message, now)

    def dead_letter(self, invalid: wire.Invalid, now: datetime) -> None:
        """Keep a bounded record of it, unless its room's or the total cap is reached."""
        record = shrink(invalid)
        if self.caps.admit(record.source):
            self._dead_lettered(record, now)
        else:
            self._counters.dead_letters_dropped += 1
