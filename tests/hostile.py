"""Hostile payloads for the collector's topics, seeded: what a fuzzer (or one room's stolen
credentials) sends. Used by tests/test_fuzz_wire.py and bench/hostile_payloads.py.

Self-contained (json and random only), so the benchmark can run it against an older
version of the collector too.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The wire's payload limit (core/wire.py MAX_PAYLOAD_BYTES), copied: see the module doc.
LIMIT = 64 * 1024
SITE = "fuzz"
KINDS = ("telemetry", "episode", "event", "status")


def stamp(at: datetime) -> str:
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
        f"{at.second:02d}.{at.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class Payload:
    topic: str
    body: bytes
    #: The wire accepts it (a valid message the collector must store); None: it may or may
    #: not be (no assertion is made on it).
    valid: bool | None
    message_id: str | None = None
    category: str = ""


def telemetry(
    n: int, seq: int, ts: str, room: str, site: str = SITE, **fields: Any
) -> dict[str, Any]:
    """A valid telemetry body (a locked, occupied, watched room unless ``fields`` say)."""
    return {
        "v": 1,
        "id": f"t-{room}-{n}",
        "seq": seq,
        "ts": ts,
        "site": site,
        "room": room,
        "temperature_c": 21.0,
        "lux": 300.0,
        "co2_ppm": None,
        "occupied": True,
        "door_closed": True,
        "door_locked": True,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": None,
        **fields,
    }


def episode(n: int, seq: int, ts: str, room: str, started_at: str) -> dict[str, Any]:
    return {
        "v": 1,
        "id": f"e-{room}-{n}",
        "seq": seq,
        "ts": ts,
        "site": SITE,
        "room": room,
        "event": "started",
        "episode_id": f"{SITE}.{room}.{n}",
        "started_at": started_at,
        "ended_at": None,
        "reason": "fuzz",
    }


def deep(depth: int, closed: bool) -> bytes:
    opening = b'{"a":' * depth
    return opening + (b"1" + b"}" * depth if closed else b"1")


class Hostile:
    """Payload ``n`` of a seeded stream; rooms ``fuzz/junk-<k>`` take the junk, so one room
    (the caller's) can carry the valid readings whose alert state is checked."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = stamp(now)
        self.sent_valid: list[Payload] = []

    def topic(self, kind: str | None = None, room: str | None = None) -> str:
        room = room or f"junk-{self.rng.randrange(4)}"
        return f"roomwatch/v1/{SITE}/{room}/{kind or self.rng.choice(KINDS)}"

    def payload(self, n: int) -> Payload:
        rng = self.rng
        choice = rng.randrange(13)
        room = f"junk-{rng.randrange(4)}"
        base = telemetry(n, n, self.now, room)
        text = json.dumps(base).encode()
        topic = self.topic("telemetry", room)
        if choice == 0:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
            return Payload(self.topic(), b"\xff" + body, False, category="random bytes")
        if choice == 1:
            cut = text[: rng.randrange(1, len(text) - 1)]
            return Payload(topic, cut, False, category="truncated JSON")
        if choice == 2:
            name = rng.choice(["temperature_c", "lux"])
            number = rng.choice(["NaN", "Infinity", "-Infinity", "1e999"])
            if rng.random() < 0.5:  # an event's own fields are not range-checked
                reading = json.dumps({**base, "type": "reading", "level": 1.5}).encode()
                body = reading.replace(b'"level": 1.5', f'"level": {number}'.encode())
                topic = self.topic("event", room)
            else:
                old = f'"{name}": {base[name]}'.encode()
                body = text.replace(old, f'"{name}": {number}'.encode())
            return Payload(topic, body, False, category="NaN and infinities")
        if choice == 3:
            depth = rng.choice([100, 1000, 10_000, LIMIT // 5 - 2])
            return Payload(self.topic(), deep(depth, rng.random() < 0.5), False, category="deep")
        if choice == 4:
            size = rng.choice([1000, 10_000, LIMIT - 600])  # up to the limit
            event = {**base, "type": "note", "text": "x" * size}
            del event["temperature_c"]
            return Payload(
                self.topic("event", room), json.dumps(event).encode(), False, category="large"
            )
        if choice == 5:
            field, value = rng.choice(
                [
                    ("occupied", "yes"),
                    ("seq", "1"),
                    ("seq", True),
                    ("seq", -1),
                    ("seq", 2**64),
                    ("ts", 1_700_000_000),
                    ("door_locked", 0),
                    ("site", "Bad Site"),
                    ("v", 2),
                    ("lock_permit", None),
                ]
            )
            return Payload(
                topic, json.dumps({**base, field: value}).encode(), False, category="wrong types"
            )
        if choice == 6:
            text_ = rng.choice(["\ud800 alone", "a NUL \u0000 inside"])
            body = json.dumps({**base, "type": "note", "text": text_}).encode()
            return Payload(self.topic("event", room), body, False, category="lone surrogate, NUL")
        if choice == 7:
            body = text.replace(b'"fuzz"', b'"fu\xc3\x28zz"', 1)
            return Payload(topic, body, False, category="bad UTF-8")
        if choice == 8:
            year = rng.choice(["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"])
            if rng.random() < 0.5:
                message = telemetry(n, n, year, room)
                kind = "telemetry"
            else:
                message = episode(n, n, self.now, room, started_at=year)
                kind = "episode"
            message["id"] = f"y-{n}"
            found = Payload(self.topic(kind, room), json.dumps(message).encode(), True, f"y-{n}")
            self.sent_valid.append(found)
            return Payload(found.topic, found.body, True, found.message_id, "years 1 and 9999")
        if choice == 9 and self.sent_valid:
            again = rng.choice(self.sent_valid)
            return Payload(again.topic, again.body, None, category="replay")
        if choice == 10:
            seq = rng.choice([0, 2**63 - 1, 2**62, 7])
            message = telemetry(n, seq, self.now, room) | {"id": f"f-{n}"}
            found = Payload(topic, json.dumps(message).encode(), True, f"f-{n}", "forged seq")
            self.sent_valid.append(found)
            return found
        if choice == 11:
            oversize = rng.choice([LIMIT + 1, 1024 * 1024])
            return Payload(self.topic(), b"{" + b" " * oversize, False, category="oversize")
        body = json.dumps({**base, "v": 1, "extra": {"nested": [1, 2]}}).encode()
        return Payload(topic, body, False, category="unknown field")
