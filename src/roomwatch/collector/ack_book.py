"""The ack book: per agent, the sequence number up to which every message is stored.

After each commit the writer hands it the messages it stored; the book advances each
agent's mark (core/sequence.py: never over a hole), saves the marks and publishes each
agent's retained ``ack``, so the agent may forget what the database holds. At most one ack
per agent every ``ACK_EVERY_S``: under load one batch holds messages from hundreds of
agents, and an ack for each after every commit would cost more than storing them. What is
held back goes out as soon as the writer is idle (:meth:`AckBook.flush` with ``force``).

Touched only from the writer's thread. It knows nothing of the writer, the rooms or paho:
it saves and publishes through the callables it is given.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from roomwatch.collector.observability import Counters
from roomwatch.core import wire
from roomwatch.core.clock import Clock
from roomwatch.core.sequence import SeqTracker

log = logging.getLogger(__name__)

#: At most one ack per agent this often (the rest wait for the writer to be idle).
ACK_EVERY_S = 0.5

Key = tuple[str, str]


class Sent(Protocol):
    """What a publish returns (paho's ``MQTTMessageInfo``)."""

    def wait_for_publish(self, timeout: float | None = None) -> None: ...


#: Publish one retained ack: (topic, payload) -> what the client returns.
PublishAck = Callable[[str, bytes], Sent]
#: Save the marks that moved, as of a time (the ``agent_progress`` table).
SaveMarks = Callable[[dict[Key, int], datetime], None]


class AckBook:
    def __init__(
        self,
        clock: Clock,
        counters: Counters,
        gap_grace_s: float,
        save: SaveMarks,
        publish: PublishAck,
    ) -> None:
        self._clock = clock
        self._counters = counters
        self._gap_grace_s = gap_grace_s
        self._save = save
        self._publish = publish
        self._trackers: dict[Key, SeqTracker] = {}
        # Agents whose mark moved and is not yet acknowledged, the last mark acknowledged to
        # each, and when (time.monotonic()).
        self._pending: set[Key] = set()
        self._acked_seq: dict[Key, int] = {}
        self._acked_at: dict[Key, float] = {}

    def load(self, marks: dict[Key, int]) -> None:
        """The marks saved before a restart: an agent is owed nothing up to its mark."""
        self._trackers = {key: SeqTracker(seq) for key, seq in marks.items()}

    @property
    def pending(self) -> bool:
        """Whether some agent's mark moved and is not acknowledged yet."""
        return bool(self._pending)

    @staticmethod
    def hold_s() -> float:
        """How long an ack may be held back (ACK_EVERY_S, read when asked)."""
        return ACK_EVERY_S

    def mark(self, key: Key) -> int | None:
        """The stored-up-to mark of one agent (None: never heard of)."""
        tracker = self._trackers.get(key)
        return None if tracker is None else tracker.contiguous

    def committed(self, messages: Sequence[wire.Message], new_ids: set[str]) -> None:
        """After a commit: advance each agent's mark, and acknowledge what is due."""
        now = self._clock.now()
        before: dict[Key, int] = {}
        for m in messages:
            self._advance(m, m.id in new_ids, now, before)
        self._warn_of_gaps(now)
        for key, old in before.items():
            if self._trackers[key].contiguous != old:
                self._pending.add(key)
        self.flush(force=False)

    def _advance(self, m: wire.Message, new: bool, now: datetime, before: dict[Key, int]) -> None:
        key = (m.site, m.room)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = SeqTracker.unknown()
        if isinstance(m, wire.Status):
            before.setdefault(key, tracker.contiguous)
            tracker.agent_acked(m.acked_seq, now)  # what it no longer holds is not owed
            return
        seq = getattr(m, "seq", None)
        if seq is None:
            return
        if new and seq <= tracker.contiguous:
            log.warning(
                "%s/%s restarted its sequence at %d (was past %d): following it",
                *key,
                seq,
                tracker.contiguous,
            )
            tracker.restart_at(seq)
            before.setdefault(key, seq - 1)
        before.setdefault(key, tracker.contiguous)
        if isinstance(m, wire.Event) and m.type == "telemetry_dropped":
            first = m.fields.get("first_seq")
            if isinstance(first, int) and not isinstance(first, bool) and first <= seq:
                tracker.cover(first, seq, now)  # the agent's full outbox gave these up
        tracker.add(seq, now)

    def _warn_of_gaps(self, now: datetime) -> None:
        for key, tracker in self._trackers.items():
            gap = tracker.stale_gap(now, self._gap_grace_s)
            if gap is not None:
                self._counters.gaps += 1
                log.warning(
                    "%s/%s: sequence %d-%d (%d message(s)) missing for over %.0f s; "
                    "waiting for the agent's replay",
                    *key,
                    gap.first,
                    gap.last,
                    gap.size,
                    self._gap_grace_s,
                )

    def flush(self, force: bool) -> list[Sent]:
        """Save and publish each pending agent's mark (``force``: all pending, now)."""
        if not self._pending:
            return []
        mono = time.monotonic()
        due = {
            key
            for key in self._pending
            if force or mono - self._acked_at.get(key, -ACK_EVERY_S) >= ACK_EVERY_S
        }
        advanced = {
            key: self._trackers[key].contiguous
            for key in sorted(due)
            if self._trackers[key].contiguous != self._acked_seq.get(key)
        }
        self._pending -= due
        if not advanced:
            return []
        now = self._clock.now()
        try:
            self._save(advanced, now)
        except Exception:
            self._pending |= due  # not saved: not acknowledged; the next flush retries
            log.exception("could not save agents' progress; acks held back")
            return []
        sent = []
        for (site, room), seq in advanced.items():
            self._acked_seq[(site, room)] = seq
            self._acked_at[(site, room)] = mono
            ack = wire.Ack(id=uuid.uuid4().hex, ts=now, site=site, room=room, seq=seq)
            # Retained, so an agent that restarts learns at once what is safe to forget.
            sent.append(self._publish(wire.topic_of(ack), wire.encode(ack)))
        return sent

    def flush_and_wait(self, timeout: float) -> None:
        """Send every held-back ack and wait (at most ``timeout`` in all) until the broker
        has each: before a stop, while the link can still carry them."""
        deadline = time.monotonic() + timeout
        for info in self.flush(force=True):
            # Not connected (it raises): the agent keeps its messages and replays them.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))
