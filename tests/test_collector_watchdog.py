"""Issue 14, finding 5: the collector under systemd's watchdog (READY, a heartbeat only while
its network thread, writer and rules tick are alive, STOPPING), and a collector that was
itself stalled (SIGSTOP, a suspended VM) does not blame the agents for its own deafness."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import Broker, Recorder, received, wait_until
from roomwatch.collector import service as collector_service
from roomwatch.collector import writer as collector_writer
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock, WallClock
from roomwatch.firmware_config import MqttSettings

SITE = "lincoln"


def quiet_beats(sock: socket.socket, window_s: float) -> int:
    """WATCHDOG=1 datagrams received in the next ``window_s`` seconds."""
    sock.settimeout(window_s)
    beats = 0
    try:
        while True:
            if sock.recv(256).decode() == "WATCHDOG=1":
                beats += 1
    except TimeoutError:
        pass
    sock.settimeout(10)
    return beats


def telemetry(room: str, seq: int, **fields: Any) -> bytes:
    body = {
        "v": 1,
        "id": f"{room}-{seq}",
        "seq": seq,
        "ts": wire.format_ts(WallClock().now()),
        "site": SITE,
        "room": room,
        "temperature_c": 21.0,
        "lux": 300.0,
        "co2_ppm": None,
        "occupied": False,
        "door_closed": True,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": None,
        **fields,
    }
    return json.dumps(body).encode()


@pytest.fixture
def fast_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Seconds in production; a fraction of one here, so a hang shows at once.
    monkeypatch.setattr(collector_service, "TICK_STALE_S", 0.3)
    monkeypatch.setattr(collector_service, "WRITER_STALE_S", 0.3)
    monkeypatch.setattr(collector_writer, "WRITER_BEAT_S", 0.05)
    monkeypatch.setattr(collector_service, "HANDLER_STALE_S", 0.3)


def test_ready_heartbeats_and_stopping(
    notify_socket: socket.socket, tmp_path: Path, fast_limits: None
) -> None:
    collector = Collector(
        CollectorConfig(
            mqtt=MqttSettings(port=1),  # no broker: paho's thread keeps retrying, alive
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=None,
            tick_s=0.05,
        ),
        WallClock(),
    )
    collector.start()
    try:
        assert received(notify_socket, "READY=1")[-1] == "READY=1"
        received(notify_socket, "WATCHDOG=1")
        received(notify_socket, "WATCHDOG=1")
    finally:
        collector.stop()
    assert "STOPPING=1" in received(notify_socket, "STOPPING=1")


def test_no_heartbeat_while_the_tick_or_a_message_handler_hangs(
    notify_socket: socket.socket, tmp_path: Path, fast_limits: None
) -> None:
    collector = Collector(
        CollectorConfig(
            mqtt=MqttSettings(port=1),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=None,
            tick_s=0.05,
        ),
        WallClock(),
    )
    collector.start()
    try:
        received(notify_socket, "WATCHDOG=1")
        with collector.book.lock:  # the rules tick and message handling hang (a deadlock)
            handler = threading.Thread(
                target=collector.on_message,
                args=(wire.topic(SITE, "r1", "telemetry"), telemetry("r1", 0)),
            )
            handler.start()

            def both() -> bool:
                problems = collector.heartbeat().problems()
                return any(p.startswith("the rules tick") for p in problems) and any(
                    p.startswith("a message handler has run") for p in problems
                )

            assert wait_until(both), collector.heartbeat().problems()
            problems = collector.heartbeat().problems()
            assert any(p.startswith("the rules tick") for p in problems), problems
            assert any(p.startswith("a message handler has run") for p in problems), problems
            # At most the beats already due before the hang was noticed.
            assert quiet_beats(notify_socket, 1.0) <= 2
        handler.join(5)
        received(notify_socket, "WATCHDOG=1")  # back to life: heartbeats again
    finally:
        collector.stop()


def test_no_heartbeat_while_the_writer_hangs(
    notify_socket: socket.socket, tmp_path: Path, fast_limits: None
) -> None:
    collector = Collector(
        CollectorConfig(
            mqtt=MqttSettings(port=1),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=None,
            tick_s=0.05,
        ),
        WallClock(),
    )
    release = threading.Event()
    real_write = collector.store.write_batch

    def stuck_write(*args: Any) -> Any:
        release.wait(10)  # a database call that never returns (a hung connection)
        return real_write(*args)

    collector.store.write_batch = stuck_write  # type: ignore[method-assign, assignment]
    collector.start()
    try:
        received(notify_socket, "WATCHDOG=1")
        collector.on_message(wire.topic(SITE, "r1", "telemetry"), telemetry("r1", 0))

        def writer_stuck() -> bool:
            return any(
                p.startswith("the database writer") for p in collector.heartbeat().problems()
            )

        assert wait_until(writer_stuck), collector.heartbeat().problems()
        assert quiet_beats(notify_socket, 1.0) <= 2
        release.set()
        received(notify_socket, "WATCHDOG=1")
    finally:
        release.set()
        collector.stop()


# --------------------------------------------------------------- a stall of its own


def test_a_stalled_collector_does_not_blame_the_agents(tmp_path: Path) -> None:
    """Virtual time: the collector hears a room, then is stopped for 60 s (no tick, nothing
    heard); on resume no agent_offline; silence after the resume still counts."""
    clock = VirtualClock()
    collector = Collector(
        CollectorConfig(mqtt=MqttSettings(port=1), database_url=f"sqlite:///{tmp_path / 'c.db'}"),
        clock,
    )
    collector.open()
    try:
        for seq in range(5):
            collector.on_message(wire.topic(SITE, "r1", "telemetry"), telemetry_at(clock, seq))
            clock.advance(1)
            collector.tick()
        clock.advance(60)  # SIGSTOP: not a tick, not a message, for a minute
        collector.tick()
        assert not offline(collector), "its own stall was blamed on the agent"
        for _ in range(26):  # the agent really is silent now: 2.5 intervals of 10 s
            clock.advance(1)
            collector.tick()
        assert offline(collector), "silence after the resume must still count"
    finally:
        collector.stop()


def telemetry_at(clock: VirtualClock, seq: int) -> bytes:
    body = json.loads(telemetry("r1", seq))
    body["ts"] = wire.format_ts(clock.now())
    return json.dumps(body).encode()


def offline(collector: Collector) -> bool:
    return any(a.type is wire.AlertType.AGENT_OFFLINE for a in collector.desk.open.values())


def test_sigstop_then_sigcont_raises_no_agent_offline(mosquitto: Broker, tmp_path: Path) -> None:
    """The real process, SIGSTOPped for 5 s while the room's agent is quiet (its messages
    would be in flight), then SIGCONT: the first tick after the resume says it was stalled
    and raises nothing; the room's next messages and a real alert come through."""
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"database_url: sqlite:///{tmp_path / 'c.db'}\n"
        "telemetry_interval_s: 1\ntick_s: 0.1\nhttp_port: null\nweb: {enabled: false}\n"
    )
    log = tmp_path / "collector.log"
    alerts = Recorder(mosquitto, "roomwatch/v1/+/+/alerts")
    room = Recorder(mosquitto, "roomwatch/v1/lincoln/r1/ack")  # publishes as the agent
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "roomwatch", "collector", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    seq = 0

    def speak(**fields: Any) -> None:
        nonlocal seq
        room.publish(wire.topic(SITE, "r1", "telemetry"), telemetry("r1", seq, **fields))
        seq += 1

    def stored() -> int:
        db = tmp_path / "c.db"
        if not db.exists():
            return 0
        con = sqlite3.connect(db)
        try:
            return int(con.execute("select count(*) from message").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()

    try:
        assert wait_until(lambda: "subscribed to" in log.read_text(), timeout=20), log.read_text()
        speak()
        assert wait_until(lambda: stored() >= 1, timeout=10), log.read_text()
        process.send_signal(signal.SIGSTOP)
        # The stall is the subject: 5 s, twice the 2.5 s of silence that means offline.
        threading.Event().wait(5)
        process.send_signal(signal.SIGCONT)

        def outcome() -> bool:
            said = "was stalled" in log.read_text()
            return said or any(b'"agent_offline"' in p for _, p in alerts.messages)

        assert wait_until(outcome, timeout=10), log.read_text()
        assert not [p for _, p in alerts.messages if b'"agent_offline"' in p], (
            "agent_offline raised for the collector's own stall"
        )
        speak()
        speak(occupied=True, door_locked=True)  # a real alert, after which nothing is pending
        alerts.wait_for(lambda _, p: b"door_locked_while_occupied" in p, timeout=10)
        assert not [p for _, p in alerts.messages if b'"agent_offline"' in p]
    finally:
        process.terminate()
        process.wait(timeout=30)
        alerts.close()
        room.close()
