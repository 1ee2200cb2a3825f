"""Per-agent sequence tracking at the collector: what is stored, what is missing. Pure.

The collector acknowledges the highest sequence number up to which it has
stored *every* message of an agent (``contiguous``); the agent then forgets
everything up to it. So the mark never moves over a hole: a missing message
is still in the agent's outbox and will be replayed. The only numbers the
agent gives up are telemetry readings dropped from a full outbox, and those
it names in a ``telemetry_dropped`` event (:meth:`SeqTracker.cover`).

A hole open longer than the grace is *reported* (once), never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: The most numbers one cover above a hole may add (an agent's outbox drops at most a
#: tenth of its largest capacity, 10,000,000, at once).
MAX_SPAN = 1_000_000


@dataclass(frozen=True, slots=True)
class Gap:
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass
class SeqTracker:
    contiguous: int
    above: set[int] = field(default_factory=set)
    gap_since: datetime | None = None
    reported: Gap | None = None

    @classmethod
    def unknown(cls) -> SeqTracker:
        """An agent never seen before: every number from 0 is owed until its status says
        which it has already had acknowledged (:meth:`agent_acked`). Assuming anything
        else would acknowledge messages the broker dropped before we subscribed."""
        return cls(contiguous=-1)

    def agent_acked(self, acked_seq: int, now: datetime) -> None:
        """The agent reports it no longer holds anything at or below ``acked_seq``."""
        if acked_seq >= 0:
            self.cover(0, acked_seq, now)

    def add(self, seq: int, now: datetime) -> None:
        """Record that message ``seq`` is stored."""
        self.cover(seq, seq, now)

    def cover(self, first: int, last: int, now: datetime) -> None:
        """Record that every number from ``first`` to ``last`` is accounted for."""
        if last <= self.contiguous:
            return
        if first <= self.contiguous + 1:
            self.contiguous = last
            self.above = {s for s in self.above if s > last}
        elif last - first >= MAX_SPAN:
            # A forged range (a telemetry_dropped naming 0 to 2^63-1 above a hole) must not
            # fill memory: keep only its last number; the hole below stays reported.
            self.above.add(last)
        else:
            self.above.update(range(first, last + 1))
        self._absorb()
        if self.above and self.gap_since is None:
            self.gap_since = now

    def restart_at(self, seq: int) -> None:
        """The agent started numbering afresh (a new outbox): follow it."""
        self.contiguous = seq - 1
        self.above.clear()
        self.gap_since = None
        self.reported = None

    def stale_gap(self, now: datetime, grace_s: float) -> Gap | None:
        """The lowest hole, once, when it has been open longer than ``grace_s``."""
        if not self.above or self.gap_since is None:
            return None
        if now - self.gap_since < timedelta(seconds=grace_s):
            return None
        gap = Gap(self.contiguous + 1, min(self.above) - 1)
        if gap == self.reported:
            return None
        self.reported = gap
        return gap

    def _absorb(self) -> None:
        while self.contiguous + 1 in self.above:
            self.contiguous += 1
            self.above.remove(self.contiguous)
        if not self.above:
            self.gap_since = None
            self.reported = None
