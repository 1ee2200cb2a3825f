"""Issue 14: a fuzz suite against a real Mosquitto (configured as docs/operations.md says,
size limit included) and a real collector. Seeded and bounded (2,000 hostile payloads from
tests/hostile.py: random bytes, truncated JSON, NaN and infinities, deep nesting, large
strings up to the limit and past it, wrong types, lone surrogates, bad UTF-8, years 1 and
9999, replays, forged sequence numbers), with a real room's readings interleaved.

It asserts zero crashes (no collector error, no failed write, no error logged), zero valid
messages lost, the alert state right after the burst (the locked, occupied room still has
its critical alert, though forged readings from year 9999 with the highest sequence number
said otherwise), bounded dead letters, and a collector that restarts cleanly on the
resulting database."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Broker, wait_until
from hostile import LIMIT, SITE, Hostile, telemetry
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.dead_letters import PREFIX_BYTES
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings

SEED = 14
PAYLOADS = 2000
WATCHED = "watched"
CRITICAL = wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED


@pytest.fixture
def start(mosquitto: Broker, tmp_path: Path) -> Iterator[Callable[[VirtualClock], Collector]]:
    running: list[Collector] = []

    def make(clock: VirtualClock) -> Collector:
        service = Collector(
            CollectorConfig(
                mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
                database_url=f"sqlite:///{tmp_path / 'c.db'}",
                http_port=None,
                batch_max=2000,
            ),
            clock,
        )
        service.start(schedule=False)
        running.append(service)
        assert service.link.subscribed.wait(10)
        return service

    yield make
    for service in running:
        service.stop()


def critical_open(collector: Collector) -> bool:
    return any(
        a.type is CRITICAL and (a.site, a.room) == (SITE, WATCHED) for a in collector.open_alerts()
    )


def test_a_seeded_burst_of_hostile_payloads(
    mosquitto: Broker,
    start: Callable[[VirtualClock], Collector],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = VirtualClock()
    collector = start(clock)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzzer")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    hostile = Hostile(SEED, clock.now())
    watched_topic = wire.topic(SITE, WATCHED, "telemetry")
    valid_ids: set[str] = set()
    arriving = 0  # what the broker forwards (it drops what is over the size limit)
    seq = 0

    def send(topic: str, body: bytes) -> mqtt.MQTTMessageInfo:
        nonlocal arriving
        arriving += len(body) <= LIMIT
        return client.publish(topic, body, qos=1)

    def real_reading() -> None:
        """The watched room's agent: locked and occupied, a second after its last word."""
        nonlocal seq
        clock.advance(1)
        message = telemetry(seq, seq, wire.format_ts(clock.now()), WATCHED)
        valid_ids.add(message["id"])
        seq += 1
        send(watched_topic, json.dumps(message).encode()).wait_for_publish(10)

    try:
        real_reading()
        assert wait_until(lambda: critical_open(collector), timeout=10)
        last = None
        for n in range(PAYLOADS):
            payload = hostile.payload(n)
            last = send(payload.topic, payload.body)
            if payload.valid and payload.message_id:
                valid_ids.add(payload.message_id)
            if n % 250 == 125:
                # The attack of finding 2, with the highest sequence number there is.
                forged = telemetry(n, 2**63 - 1, "9999-12-31T23:59:59.999Z", WATCHED)
                forged |= {"id": f"forged-{n}", "door_locked": False, "occupied": False}
                valid_ids.add(forged["id"])
                send(watched_topic, json.dumps(forged).encode()).wait_for_publish(10)
                # The next reading comes after this one arrived (it is judged by arrival).
                assert wait_until(lambda: collector.counters.received >= arriving, timeout=30)
            if n % 20 == 0:
                real_reading()
            if n % 200 == 0:
                last.wait_for_publish(30)
        real_reading()
    finally:
        client.loop_stop()
        client.disconnect()

    assert wait_until(lambda: collector.counters.received == arriving, timeout=60), (
        collector.counters,
        arriving,
    )
    db = sqlite3.connect(tmp_path / "c.db")

    def stored_valid() -> int:
        marks = ",".join("?" for _ in valid_ids)
        query = f"select count(*) from message where id in ({marks})"
        return int(db.execute(query, sorted(valid_ids)).fetchone()[0])

    # Right after the burst: the locked, occupied room has its critical alert open.
    assert critical_open(collector), "the burst silenced a locked door"
    assert wait_until(lambda: stored_valid() == len(valid_ids), timeout=30), "valid ones lost"
    assert wait_until(lambda: collector.writer.depth() == 0, timeout=30)
    counters = collector.counters
    assert counters.write_failures == 0 and collector.health().ok, collector.health()
    crashes = db.execute("select count(*) from dead_letter where reason like 'collector error%'")
    assert crashes.fetchone()[0] == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    letters, kept = db.execute("select count(*), sum(length(payload)) from dead_letter").fetchone()
    assert letters == counters.invalid - counters.dead_letters_dropped
    assert kept <= letters * PREFIX_BYTES, "a dead letter keeps a prefix, not the payload"
    collector.stop()

    # A clean restart on what the burst left: nothing to quarantine, the alert still open.
    clock.advance(1)
    again = start(clock)
    assert again.counters.quarantined == {}
    assert critical_open(again)
    state = again.room_snapshot((SITE, WATCHED))
    assert state is not None and state.view.telemetry is not None
    assert state.view.telemetry.door_locked is True
    again.on_message(
        watched_topic,
        json.dumps(telemetry(seq, seq, wire.format_ts(clock.now()), WATCHED)).encode(),
    )
    assert critical_open(again)
