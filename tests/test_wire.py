"""Wire contract v1: round trips, topics, and malformed input that never escapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomwatch.core import wire

TS = datetime(2026, 11, 23, 8, 15, 2, 125000, tzinfo=UTC)
ENVELOPE: dict[str, Any] = {
    "v": 1,
    "id": "m-1",
    "ts": "2026-11-23T08:15:02.125Z",
    "site": "lincoln",
    "room": "room-101",
}

BODIES: dict[wire.Kind, dict[str, Any]] = {
    wire.Kind.TELEMETRY: {
        "seq": 7,
        "temperature_c": 21.5,
        "lux": 320.0,
        "co2_ppm": None,
        "occupied": True,
        "door_closed": True,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": "lincoln.room-101.20261123T081500000Z",
        "vacated_at": "2026-11-23T08:20:01.250Z",
    },
    wire.Kind.EPISODE: {
        "seq": 8,
        "event": "ended",
        "episode_id": "e-1",
        "started_at": "2026-11-23T08:00:00.000Z",
        "ended_at": "2026-11-23T08:12:00.500Z",
        "reason": "room_empty",
    },
    wire.Kind.EVENT: {"seq": 9, "type": "lock_released", "permit_was": False, "occupied": True},
    wire.Kind.STATUS: {
        "seq": None,
        "state": "offline",
        "agent_version": "0.1.0",
        "config_digest": "sha256:abc",
        "profile": "us-mi",
        "acked_seq": 41,
    },
    wire.Kind.ALERTS: {
        "alert_id": "a-1",
        "type": "door_locked_while_occupied",
        "severity": "critical",
        "state": "raised",
        "episode_id": None,
        "raised_at": "2026-11-23T08:15:02.125Z",
        "message": "Door locked",
        "late": False,
        "subject": None,
        "tier": 1,
        "acknowledged_by": None,
    },
    wire.Kind.CMD: {"action": "end_episode", "episode_id": "e-1", "by": "user-17"},
    wire.Kind.ACK: {"seq": 41},
}


def body(kind: wire.Kind, **changes: Any) -> dict[str, Any]:
    return {**ENVELOPE, **BODIES[kind], **changes}


@pytest.mark.parametrize("kind", list(wire.Kind))
def test_every_kind_round_trips_exactly(kind: wire.Kind) -> None:
    raw = json.dumps(body(kind)).encode()
    result = wire.decode(f"roomwatch/v1/lincoln/room-101/{kind.value}", raw)
    assert isinstance(result, wire.Decoded), result
    assert result.message.kind is kind
    again = wire.decode(wire.topic_of(result.message), wire.encode(result.message))
    assert isinstance(again, wire.Decoded)
    assert again.message == result.message
    assert json.loads(wire.encode(result.message)) == body(kind)


def test_timestamps_are_rfc3339_utc_milliseconds() -> None:
    assert wire.format_ts(TS) == "2026-11-23T08:15:02.125Z"
    assert wire.parse_ts("2026-11-23T08:15:02.125Z") == TS
    for bad in (
        "2026-11-23T08:15:02Z",
        "2026-11-23T08:15:02.125+00:00",
        "2026-11-23 08:15:02.125Z",
        1700000000,
    ):
        with pytest.raises(ValueError, match="RFC 3339"):
            wire.parse_ts(bad)


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        (wire.Kind.TELEMETRY, {"occupied": "yes"}, "occupied"),
        (wire.Kind.TELEMETRY, {"temperature_c": 900}, "temperature_c"),
        (wire.Kind.TELEMETRY, {"seq": -1}, "seq"),
        (wire.Kind.TELEMETRY, {"seq": True}, None),
        (wire.Kind.TELEMETRY, {"door_lockd": True}, "door_lockd"),
        (wire.Kind.TELEMETRY, {"ts": "yesterday"}, "ts"),
        (wire.Kind.TELEMETRY, {"v": 2}, "v"),
        (wire.Kind.EPISODE, {"event": "paused"}, "event"),
        (wire.Kind.EVENT, {"type": "Lock Released"}, "type"),
        (wire.Kind.EVENT, {"nested": {"a": 1}}, None),
        (wire.Kind.STATUS, {"state": "maybe"}, "state"),
        (wire.Kind.ALERTS, {"type": "bad_vibes"}, "type"),
    ],
)
def test_a_malformed_field_is_named(
    kind: wire.Kind, changes: dict[str, Any], field: str | None
) -> None:
    result = wire.decode(
        f"roomwatch/v1/lincoln/room-101/{kind.value}", json.dumps(body(kind, **changes)).encode()
    )
    assert isinstance(result, wire.Invalid)
    if field is not None:
        assert result.field == field
        assert field in result.reason
    else:
        assert result.reason


def test_a_missing_field_is_named() -> None:
    raw = body(wire.Kind.TELEMETRY)
    del raw["door_locked"]
    result = wire.decode("roomwatch/v1/lincoln/room-101/telemetry", json.dumps(raw).encode())
    assert isinstance(result, wire.Invalid)
    assert result.field == "door_locked"


def test_body_must_match_topic() -> None:
    result = wire.decode(
        "roomwatch/v1/lincoln/room-999/telemetry", json.dumps(body(wire.Kind.TELEMETRY)).encode()
    )
    assert isinstance(result, wire.Invalid)
    assert result.field == "room"


@pytest.mark.parametrize(
    "name",
    [
        "roomwatch/v2/s/r/telemetry",
        "roomwatch/v1/s/r",
        "roomwatch/v1/S/r/telemetry",
        "roomwatch/v1/s/r/selfie",
        "other/v1/s/r/telemetry",
        "roomwatch/v1/s/r/telemetry/extra",
        "",
    ],
)
def test_foreign_topics_are_rejected(name: str) -> None:
    with pytest.raises(wire.TopicError):
        wire.parse_topic(name)
    assert isinstance(wire.decode(name, b"{}"), wire.Invalid)


def test_topic_builder_and_shared_subscription() -> None:
    assert wire.topic("lincoln", "room-101", "alerts") == "roomwatch/v1/lincoln/room-101/alerts"
    assert wire.parse_topic("roomwatch/v1/lincoln/room-101/ack") == wire.Topic(
        "lincoln", "room-101", wire.Kind.ACK
    )
    assert (
        wire.subscription("telemetry", share="collectors")
        == "$share/collectors/roomwatch/v1/+/+/telemetry"
    )
    with pytest.raises(wire.TopicError):
        wire.topic("Lincoln", "room 101", "alerts")


def test_oversized_payload_is_rejected_unread() -> None:
    result = wire.decode("roomwatch/v1/s/r/telemetry", b" " * (wire.MAX_PAYLOAD_BYTES + 1))
    assert isinstance(result, wire.Invalid)
    assert "exceeds" in result.reason


@settings(max_examples=500)
@given(payload=st.binary(max_size=400), kind=st.sampled_from(list(wire.Kind)))
def test_decode_never_raises_on_random_bytes(payload: bytes, kind: wire.Kind) -> None:
    result = wire.decode(f"roomwatch/v1/s/r/{kind.value}", payload)
    assert isinstance(result, wire.Invalid | wire.Decoded)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(body(wire.Kind.TELEMETRY))), JSON, min_size=1, max_size=4
    )
)
def test_decode_never_raises_on_mutated_telemetry(changes: dict[str, Any]) -> None:
    raw = json.dumps(body(wire.Kind.TELEMETRY, **changes)).encode()
    result = wire.decode("roomwatch/v1/lincoln/room-101/telemetry", raw)
    assert isinstance(result, wire.Invalid | wire.Decoded)


@given(
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    temp=st.none() | st.floats(min_value=-40, max_value=85),
    occupied=st.none() | st.booleans(),
    ms=st.integers(min_value=0, max_value=999),
)
def test_telemetry_round_trips_for_any_valid_values(
    seq: int, temp: float | None, occupied: bool | None, ms: int
) -> None:
    t = wire.Telemetry.model_validate(
        body(
            wire.Kind.TELEMETRY,
            seq=seq,
            temperature_c=temp,
            occupied=occupied,
            ts=f"2026-11-23T08:15:02.{ms:03d}Z",
        )
    )
    result = wire.decode(wire.topic_of(t), wire.encode(t))
    assert isinstance(result, wire.Decoded)
    assert result.message == t


def test_the_schema_version_is_required_on_the_wire() -> None:
    raw = body(wire.Kind.EVENT)
    del raw["v"]
    result = wire.decode("roomwatch/v1/lincoln/room-101/event", json.dumps(raw).encode())
    assert isinstance(result, wire.Invalid)
    assert result.reason == "v (the schema version) is required on the wire"
