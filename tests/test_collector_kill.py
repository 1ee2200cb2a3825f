"""Issue 4: 5,000 telemetry messages in flight; the collector, then the broker, SIGKILLed and
restarted; every message stored exactly once, thanks to the agents' outboxes and the ack topic.

The collector runs as a real process (so it can be killed); the agents run in this process on
virtual clocks, producing their telemetry as fast as they can."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import Broker, wait_until
from roomwatch.core.clock import VirtualClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model

AGENTS = 5
EACH = 1000


class CollectorProcess:
    def __init__(self, broker: Broker, folder: Path) -> None:
        self.db = folder / "collector.db"
        self.log = (folder / "collector.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roomwatch",
                "collector",
                "--broker",
                broker.url,
                "--db",
                f"sqlite:///{self.db}",
                "--no-web",
                # No health port: the default 9480 may be another test's (a taken port stops it).
                "--config",
                str(_no_health(folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if not self.log.closed:
            self.log.close()


def agents(broker: Broker, folder: Path) -> list[AgentService]:
    made = []
    for n in range(AGENTS):
        config = parse_model(
            f"site: lincoln\nroom: room-{n}\nsensors:\n  motion: {{kind: pir, pin: 22}}\n"
            "timing: {ack_stall_s: 2}\n",
            AgentConfig,
        ).model_copy(
            update={
                "mqtt": MqttSettings(host=broker.host, port=broker.port),
                "state_dir": folder / f"agent-{n}",
            }
        )
        service = AgentService(config, VirtualClock(), MockFactory(), schedule=False)
        service.start()
        made.append(service)
    return made


def stored_per_room(db: Path) -> dict[str, tuple[int, int, int]]:
    """room -> (messages, distinct seqs, max seq)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "select room, count(*), count(distinct seq), max(seq) from message "
            "where seq is not null group by room"
        ).fetchall()
    finally:
        con.close()
    return {room: (n, distinct, top) for room, n, distinct, top in rows}


@pytest.fixture
def fleet(packaged_mosquitto: Broker, tmp_path: Path) -> Iterator[list[AgentService]]:
    made = agents(packaged_mosquitto, tmp_path)
    yield made
    for service in made:
        service.stop()


def burst(fleet: list[AgentService]) -> None:
    for _ in range(EACH):
        for service in fleet:
            service.clock.advance(1)  # type: ignore[attr-defined]
            service.agent.publish_telemetry()


def everything_stored(fleet: list[AgentService], db: Path) -> bool:
    if any(len(s.outbox) for s in fleet):
        return False
    stored = stored_per_room(db)
    return all(stored.get(s.config.room, (0, 0, -1))[0] == s.outbox.last_seq + 1 for s in fleet)


def check_exactly_once(fleet: list[AgentService], db: Path) -> None:
    stored = stored_per_room(db)
    for service in fleet:
        produced = service.outbox.last_seq + 1
        assert produced >= EACH
        assert stored[service.config.room] == (produced, produced, produced - 1), (
            service.config.room
        )


def test_collector_killed_with_5000_in_flight(
    packaged_mosquitto: Broker, fleet: list[AgentService], tmp_path: Path
) -> None:
    collector = CollectorProcess(packaged_mosquitto, tmp_path)
    try:
        assert all(s.link.subscribed.wait(10) for s in fleet)
        burst(fleet)
        assert wait_until(
            lambda: (tmp_path / "collector.db").exists() and bool(stored_per_room(collector.db)), 30
        )
        collector.kill()  # mid-stream: some stored, some queued at the broker, some in its memory
        collector = CollectorProcess(packaged_mosquitto, tmp_path)
        assert wait_until(
            lambda: everything_stored(fleet, tmp_path / "collector.db"), timeout=120
        ), stored_per_room(tmp_path / "collector.db")
    finally:
        collector.stop()
    check_exactly_once(fleet, tmp_path / "collector.db")


def test_broker_killed_with_5000_in_flight(
    packaged_mosquitto: Broker, fleet: list[AgentService], tmp_path: Path
) -> None:
    collector = CollectorProcess(packaged_mosquitto, tmp_path)
    try:
        assert all(s.link.subscribed.wait(10) for s in fleet)
        burst(fleet)
        packaged_mosquitto.kill()  # Debian's settings: nothing saved since start
        packaged_mosquitto.start()
        assert wait_until(
            lambda: everything_stored(fleet, tmp_path / "collector.db"), timeout=120
        ), stored_per_room(tmp_path / "collector.db")
    finally:
        collector.stop()
    check_exactly_once(fleet, tmp_path / "collector.db")


def _no_health(folder: Path) -> Path:
    config = folder / "collector-no-health.yaml"
    config.write_text("http_port: null\n")
    return config
