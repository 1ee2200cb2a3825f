"""Issue 4: nothing a client sends can crash the collector; health and metrics tell the truth."""

from __future__ import annotations

import json
import random
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Broker, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings

PAYLOADS = 10_000


@pytest.fixture
def collector(mosquitto: Broker, tmp_path: Path) -> Iterator[Collector]:
    service = Collector(
        CollectorConfig(
            mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=0,
            batch_max=2000,
            # Every one of the 10,000 is kept here (the caps are tests/test_dead_letters.py's).
            dead_letters_per_agent=2 * PAYLOADS,
        ),
        WallClock(),
    )
    service.start()
    assert service.link.subscribed.wait(10)
    yield service
    service.stop()


def valid_event(n: int) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "id": f"valid-{n}",
            "seq": n,
            "ts": wire.format_ts(WallClock().now()),
            "site": "fuzz",
            "room": "room-1",
            "type": "staff_checkin",
        }
    ).encode()


def malformed(rng: random.Random, n: int) -> tuple[str, bytes]:
    """A payload that is invalid by construction, on one of the collector's topics."""
    base = json.loads(valid_event(n))
    base["id"] = f"bad-{n}"
    choice = rng.randrange(8)
    topic = "roomwatch/v1/fuzz/room-1/" + rng.choice(["telemetry", "event", "episode", "status"])
    if choice == 0:
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
        if payload[:1] in (b"{", b"[", b" ") or payload.strip().startswith(b"{"):
            payload = b"\xff" + payload  # never accidentally a JSON object
    elif choice == 1:
        payload = json.dumps(rng.choice([[], 1, "x", None, True, [base]])).encode()
    elif choice == 2:
        del base[rng.choice(["v", "id", "ts", "site", "room"])]
        payload = json.dumps(base).encode()
    elif choice == 3:
        base[rng.choice(["v", "ts", "site", "room"])] = rng.choice(
            [2, "yesterday", "Bad Room", {}, [], None]
        )
        payload = json.dumps(base).encode()
    elif choice == 4:
        payload = json.dumps(base).encode()[: rng.randrange(1, 40)]  # cut short
    elif choice == 5:
        base["room"] = "room-2"  # body and topic disagree
        payload = json.dumps(base).encode()
        topic = "roomwatch/v1/fuzz/room-1/event"
    elif choice == 6:
        topic = "roomwatch/v1/Fuzz_Site/room-1/event"  # not a valid site id
        payload = json.dumps(base).encode()
    else:
        payload = b"{" + b'"a":' * rng.randrange(1, 3000) + b"1"  # deep, broken nesting
    if topic.endswith("/event") and choice in (2, 3):
        pass
    return topic, payload


def test_ten_thousand_malformed_payloads_are_dead_lettered_and_valid_ones_stored(
    mosquitto: Broker, collector: Collector, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzzer")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    valid = 0
    last: Any = None
    try:
        for n in range(PAYLOADS):
            topic, payload = malformed(rng, n)
            last = client.publish(topic, payload, qos=1)
            if n % 100 == 0:  # valid messages in between
                last = client.publish("roomwatch/v1/fuzz/room-1/event", valid_event(valid), qos=1)
                valid += 1
            if n % 500 == 0:
                last.wait_for_publish(30)
        last.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()
    assert wait_until(lambda: collector.counters.received == PAYLOADS + valid, timeout=120), (
        collector.counters
    )
    db = sqlite3.connect(tmp_path / "c.db")
    assert wait_until(
        lambda: db.execute("select count(*) from dead_letter").fetchone()[0] == PAYLOADS, timeout=60
    )
    stored = db.execute("select count(*) from message where id like 'valid-%'").fetchone()[0]
    assert stored == valid
    assert collector.counters.invalid == PAYLOADS
    assert collector.health().ok, collector.health()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_and_metrics(mosquitto: Broker, collector: Collector) -> None:
    base = f"http://127.0.0.1:{collector.observability.port}"
    status, body = get(base + "/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="metrics-test")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    client.publish("roomwatch/v1/fuzz/room-1/event", valid_event(0), qos=1).wait_for_publish(5)
    client.publish("roomwatch/v1/fuzz/room-1/event", b"nope", qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    assert wait_until(lambda: collector.counters.stored == 1 and collector.counters.invalid == 1)
    status, metrics = get(base + "/metrics")
    assert status == 200
    assert 'roomwatch_messages_total{kind="event"} 1.0' in metrics
    assert "roomwatch_messages_invalid_total 1.0" in metrics
    assert "roomwatch_ingest_lag_seconds_count 1.0" in metrics
    assert "roomwatch_mqtt_connected 1.0" in metrics
    mosquitto.kill()
    assert wait_until(lambda: get(base + "/healthz")[0] == 503, timeout=10)
    assert "not connected to the MQTT broker" in get(base + "/healthz")[1]
    assert get(base + "/nowhere")[0] == 404
