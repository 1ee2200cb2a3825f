"""Dead letters, bounded by construction: a prefix of each payload, and caps on how many.

A message that fails validation is never fatal and is kept for a person to look at
(DESIGN.md), but what is kept must not let one room's credentials fill the disk: each dead
letter keeps the first :data:`PREFIX_BYTES` of its payload with the payload's size and
SHA-256 (enough to recognise it and to match it against a capture), and at most
``per_agent`` are kept per room (by topic) and ``total`` in all. Beyond a cap a dead letter
is counted (``roomwatch_dead_letters_dropped_total``) and logged, not stored.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from roomwatch.core import wire

#: Bytes of a dead letter's payload kept (the rest is summed up by its size and hash).
PREFIX_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DeadRecord:
    """What is stored of one invalid message."""

    topic: str
    prefix: bytes
    size: int
    sha256: str
    reason: str
    field: str | None
    source: str | None  # "<site>/<room>" from the topic, None when it has no such levels


def source_of(topic: str) -> str | None:
    """Whose dead letter this is, for the per-room cap: the topic's site and room levels
    (as they came: an invalid topic is still somebody's)."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == wire.TOPIC_ROOT:
        return f"{parts[2][:64]}/{parts[3][:64]}"
    return None


def shrink(invalid: wire.Invalid) -> DeadRecord:
    payload = invalid.payload
    return DeadRecord(
        topic=invalid.topic[:1024],
        prefix=payload[:PREFIX_BYTES],
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        reason=invalid.reason[:1000],
        field=invalid.field[:200] if invalid.field else None,
        source=source_of(invalid.topic),
    )


class DeadLetterCaps:
    """How many dead letters are kept, per room and in all; what is over a cap is dropped."""

    def __init__(self, per_agent: int, total: int, stored: Mapping[str | None, int]) -> None:
        self.per_agent = per_agent
        self.total = total
        self._counts = dict(stored)
        self._sum = sum(self._counts.values())
        self._lock = threading.Lock()
        self.dropped = 0

    def admit(self, source: str | None) -> bool:
        """Whether a dead letter from ``source`` is stored (counted as stored if so)."""
        with self._lock:
            held = self._counts.get(source, 0)
            if held >= self.per_agent or self._sum >= self.total:
                self.dropped += 1
                return False
            self._counts[source] = held + 1
            self._sum += 1
            return True
