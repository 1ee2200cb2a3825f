"""The first end-to-end safety path, on real parts: Mosquitto, SQLite, paho, gpiozero mocks.

Lock edge on a mock pin -> the agent withdraws the permit at once (no network)
-> lock_released event and telemetry over MQTT -> the collector raises a
critical door_locked_while_occupied alert on the room's alerts topic.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import Broker, Recorder, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model
from roomwatch.hardware.gpio import drive

ROOM_YAML = """
site: lincoln
room: room-101
profile: us-ny
sensors:
  door_lock:   {kind: contact, pin: 17}
  door_closed: {kind: contact, pin: 27}
  motion:      {kind: pir, pin: 22}
  staff:       {kind: mat, pin: 23}
outputs:
  lock_permit: {pin: 16}
  sounder:     {pin: 20}
"""
ALERTS = "roomwatch/v1/lincoln/room-101/alerts"


def is_alert(type_: str, state: str = "raised") -> Any:
    def match(topic: str, payload: bytes) -> bool:
        body = json.loads(payload)
        return topic.endswith("/alerts") and body["type"] == type_ and body["state"] == state

    return match


@pytest.fixture
def collector(mosquitto: Broker, tmp_path: Path) -> Iterator[Collector]:
    config = CollectorConfig(
        mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
        database_url=f"sqlite:///{tmp_path / 'collector.db'}",
    )
    service = Collector(config, WallClock())
    service.start()
    assert service.link.subscribed.wait(5), "collector did not subscribe"
    yield service
    service.stop()


@pytest.fixture
def agent(mosquitto: Broker, tmp_path: Path) -> Iterator[tuple[AgentService, MockFactory]]:
    config = parse_model(ROOM_YAML, AgentConfig)
    config = config.model_copy(
        update={
            "mqtt": MqttSettings(host=mosquitto.host, port=mosquitto.port),
            "state_dir": tmp_path / "agent",
        }
    )
    factory = MockFactory()
    service = AgentService(config, WallClock(), factory)
    service.start()
    assert service.link.subscribed.wait(5), "agent did not connect"
    yield service, factory
    service.stop()


def test_lock_edge_releases_at_once_and_raises_a_critical_alert(
    agent: tuple[AgentService, MockFactory], collector: Collector, recorder_factory: Any
) -> None:
    service, factory = agent
    rec: Recorder = recorder_factory(ALERTS, "roomwatch/v1/lincoln/room-101/event")
    permit = factory.pin(16)
    sounder = factory.pin(20)
    inputs = service.devices.inputs

    drive(inputs[next(i for i in inputs if i.value == "motion")], True)  # a student enters
    assert service.agent.state.occupied is True
    assert permit.state is False

    lock = next(d for i, d in inputs.items() if i.value == "door_lock")
    drive(lock, True)  # the lock is sensed engaged
    # Synchronous with the edge, before any network round trip:
    assert permit.state is False
    assert sounder.state is True

    _, event = rec.wait_for(
        lambda t, p: t.endswith("/event") and json.loads(p)["type"] == "lock_released"
    )
    assert json.loads(event)["occupied"] is True
    _, raw = rec.wait_for(is_alert("door_locked_while_occupied"))
    alert = json.loads(raw)
    assert alert["severity"] == "critical"
    assert alert["episode_id"] == service.agent.state.episode.id  # type: ignore[union-attr]
    assert isinstance(wire.decode(ALERTS, raw), wire.Decoded)

    drive(lock, False)  # someone opens it: the alert resolves itself
    rec.wait_for(is_alert("door_locked_while_occupied", "resolved"))
    assert sounder.state is False


def test_hand_written_telemetry_from_another_client_raises_the_alert(
    collector: Collector, recorder_factory: Any, tmp_path: Path
) -> None:
    rec: Recorder = recorder_factory("roomwatch/v1/+/+/alerts")
    body = {
        "v": 1,
        "id": "hand-1",
        "seq": 1,
        "ts": wire.format_ts(WallClock().now()),
        "site": "lincoln",
        "room": "room-7",
        "temperature_c": 21.0,
        "lux": 300,
        "co2_ppm": None,
        "occupied": True,
        "door_closed": True,
        "door_locked": True,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": None,
    }
    rec.publish("roomwatch/v1/lincoln/room-7/telemetry", json.dumps(body))
    topic, raw = rec.wait_for(is_alert("door_locked_while_occupied"))
    assert topic == "roomwatch/v1/lincoln/room-7/alerts"
    assert json.loads(raw)["late"] is False
    assert wait_until(lambda: collector.counters.stored == 1)


def test_bad_messages_are_dead_lettered_and_good_ones_still_stored(
    collector: Collector, recorder_factory: Any, tmp_path: Path
) -> None:
    rec: Recorder = recorder_factory("roomwatch/v1/+/+/alerts")
    for payload in (
        b"not json",
        b"[]",
        b'{"v": 1}',
        b"\xff\xfe",
        json.dumps({"v": 1, "id": "x"}).encode(),
    ):
        rec.publish("roomwatch/v1/lincoln/room-7/telemetry", payload)
    rec.publish("roomwatch/v1/lincoln/Room 7/telemetry", b"{}")
    good = {
        "v": 1,
        "id": "good-1",
        "seq": 3,
        "ts": wire.format_ts(WallClock().now()),
        "site": "lincoln",
        "room": "room-7",
        "type": "staff_checkin",
        "by": "user-4",
    }
    rec.publish("roomwatch/v1/lincoln/room-7/event", json.dumps(good))
    rec.publish("roomwatch/v1/lincoln/room-7/event", json.dumps(good))  # a duplicate
    assert wait_until(lambda: collector.counters.received == 8)
    assert wait_until(lambda: collector.counters.stored == 1)
    db = sqlite3.connect(tmp_path / "collector.db")
    assert wait_until(lambda: db.execute("select count(*) from dead_letter").fetchone()[0] == 6)
    reasons = [r for (r,) in db.execute("select reason from dead_letter order by id")]
    assert "Invalid JSON" in reasons[0]
    assert "bad room id" in reasons[5]
    assert db.execute("select id from message").fetchall() == [("good-1",)]
    assert collector.counters.duplicates == 1


def test_agent_announces_online_and_says_offline_when_stopped(
    mosquitto: Broker, tmp_path: Path, recorder_factory: Any
) -> None:
    rec: Recorder = recorder_factory("roomwatch/v1/lincoln/room-101/status")
    config = parse_model(ROOM_YAML, AgentConfig).model_copy(
        update={
            "mqtt": MqttSettings(host=mosquitto.host, port=mosquitto.port),
            "state_dir": tmp_path / "a",
        }
    )
    service = AgentService(config, WallClock(), MockFactory())
    service.start()
    rec.wait_for(lambda t, p: json.loads(p)["state"] == "online")
    service.stop()
    _, raw = rec.wait_for(lambda t, p: json.loads(p)["state"] == "offline")
    assert json.loads(raw)["config_digest"] == config.digest()


def checked_in_by(marker: str) -> Any:
    return lambda _topic, payload: json.loads(payload).get("by") == marker


def test_sequence_numbers_continue_across_restarts_and_unacked_messages_replay(
    mosquitto: Broker, tmp_path: Path, recorder_factory: Any
) -> None:
    rec: Recorder = recorder_factory("roomwatch/v1/lincoln/room-101/+")
    config = parse_model(ROOM_YAML, AgentConfig).model_copy(
        update={
            "mqtt": MqttSettings(host=mosquitto.host, port=mosquitto.port),
            "state_dir": tmp_path / "a",
        }
    )
    for run in range(2):
        service = AgentService(config, WallClock(), MockFactory())
        service.start()
        service.agent.publish_event("staff_checkin", {"by": f"run-{run}"})
        rec.wait_for(checked_in_by(f"run-{run}"))
        service.stop()
    by_id: dict[str, list[bytes]] = {}
    for _, payload in rec.messages:
        if json.loads(payload)["seq"] is None:
            continue  # status: outside the sequence
        by_id.setdefault(json.loads(payload)["id"], []).append(payload)
    assert all(len(set(copies)) == 1 for copies in by_id.values()), "a replay is byte-identical"
    first = [json.loads(c[0]) for c in by_id.values()]
    seqs = sorted(m["seq"] for m in first)
    assert seqs == list(range(len(seqs))), "one unbroken sequence across the restart"
    run0 = max(m["seq"] for m in first if m.get("by") == "run-0")
    run1 = min(m["seq"] for m in first if m.get("by") == "run-1")
    assert run1 > run0
    assert any(len(c) > 1 for c in by_id.values()), "nothing was acked, so the restart replayed"


# ------------------------------------------------------------- the real command


def test_collector_command_alerts_within_a_second_of_mosquitto_pub(
    mosquitto: Broker, tmp_path: Path, recorder_factory: Any
) -> None:
    """Issue 2's acceptance check, as an operator would do it, with real processes."""
    rec: Recorder = recorder_factory("roomwatch/v1/lincoln/room-9/alerts")
    db = tmp_path / "c.db"
    lines: list[str] = []
    ready = threading.Event()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roomwatch",
            "collector",
            "--broker",
            mosquitto.url,
            "--db",
            f"sqlite:///{db}",
            "--no-web",
            # No health port: the default 9480 may be another test's (a taken port stops it).
            "--config",
            str(_no_health(tmp_path)),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:

        def read() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line)
                if "subscribed to" in line:
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert ready.wait(15), "collector did not subscribe:\n" + "".join(lines)
            body = {
                "v": 1,
                "id": "pub-1",
                "seq": 1,
                "ts": wire.format_ts(WallClock().now()),
                "site": "lincoln",
                "room": "room-9",
                "temperature_c": None,
                "lux": None,
                "co2_ppm": None,
                "occupied": True,
                "door_closed": True,
                "door_locked": True,
                "staff_present": False,
                "lock_permit": False,
                "episode_id": None,
            }
            started = time.monotonic()
            subprocess.run(
                [
                    "mosquitto_pub",
                    "-h",
                    mosquitto.host,
                    "-p",
                    str(mosquitto.port),
                    "-q",
                    "1",
                    "-t",
                    "roomwatch/v1/lincoln/room-9/telemetry",
                    "-m",
                    json.dumps(body),
                ],
                check=True,
            )
            _, raw = rec.wait_for(is_alert("door_locked_while_occupied"), timeout=5)
            elapsed = time.monotonic() - started
            assert json.loads(raw)["severity"] == "critical"
            # The acceptance criterion; a correctness bound, not a benchmark (bench/ measures).
            assert elapsed < 1.0, f"alert took {elapsed:.3f} s"
        finally:
            process.terminate()
            process.wait(timeout=15)
            reader.join(timeout=5)
    assert process.returncode == 0, "".join(lines)
    assert "stopped: 1 received, 1 stored" in "".join(lines)


def test_the_same_path_over_mqtt_5(
    mosquitto: Broker, tmp_path: Path, recorder_factory: Any
) -> None:
    """MQTT 3.1.1 is the default; MQTT 5 (session expiry instead of clean_session) works too."""
    mqtt5 = MqttSettings(host=mosquitto.host, port=mosquitto.port, protocol="5")
    collector = Collector(
        CollectorConfig(mqtt=mqtt5, database_url=f"sqlite:///{tmp_path / 'c.db'}", http_port=None),
        WallClock(),
    )
    collector.start()
    config = parse_model(ROOM_YAML, AgentConfig).model_copy(
        update={"mqtt": mqtt5, "state_dir": tmp_path / "agent"}
    )
    service = AgentService(config, WallClock(), MockFactory())
    service.start()
    try:
        rec: Recorder = recorder_factory(ALERTS)
        assert collector.link.subscribed.wait(10) and service.link.subscribed.wait(10)
        inputs = service.devices.inputs
        drive(inputs[next(i for i in inputs if i.value == "motion")], True)
        drive(inputs[next(i for i in inputs if i.value == "door_lock")], True)
        rec.wait_for(is_alert("door_locked_while_occupied"))
        assert wait_until(lambda: len(service.outbox) == 0, timeout=20), "acknowledged over MQTT 5"
    finally:
        service.stop()
        collector.stop()


def _no_health(folder: Path) -> Path:
    config = folder / "collector-no-health.yaml"
    config.write_text("http_port: null\n")
    return config
