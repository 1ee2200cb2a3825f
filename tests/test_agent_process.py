"""A real agent process, killed with SIGKILL mid-episode (issue 3), against a real Mosquitto."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Broker, Recorder, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings

KEEPALIVE_S = 5
ROOM = f"""
site: lincoln
room: room-7
sensors:
  door_lock:   {{kind: contact, pin: 17}}
  door_closed: {{kind: contact, pin: 27}}
  motion:      {{kind: pir, pin: 22}}
outputs:
  lock_permit: {{pin: 16}}
mqtt: {{keepalive_s: {KEEPALIVE_S}}}
timing: {{telemetry_interval_s: 1, occupancy_hold_s: 2, empty_debounce_s: 2}}
"""


class AgentProcess:
    def __init__(self, broker: Broker, folder: Path) -> None:
        config = folder / "room.yaml"
        config.write_text(ROOM)
        self.log = (folder / "agent.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roomwatch",
                "agent",
                "--mock",
                "--config",
                str(config),
                "--broker",
                broker.url,
                "--state-dir",
                str(folder / "state"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.process.stdin.flush()

    def kill(self) -> float:
        """SIGKILL; returns the monotonic time of death."""
        self.process.send_signal(signal.SIGKILL)
        died = time.monotonic()
        self.process.wait(timeout=10)
        self.close()
        return died

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.close()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.log.close()


def status(state: str) -> Any:
    return lambda topic, payload: (
        topic.endswith("/status") and json.loads(payload)["state"] == state
    )


def episode(event: str) -> Any:
    return lambda topic, payload: (
        topic.endswith("/episode") and json.loads(payload)["event"] == event
    )


@pytest.fixture
def collector(mosquitto: Broker, tmp_path: Path) -> Iterator[Collector]:
    service = Collector(
        CollectorConfig(
            mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
        ),
        WallClock(),
    )
    service.start()
    assert service.link.subscribed.wait(10)
    yield service
    service.stop()


def test_agent_killed_mid_episode_replays_and_the_episode_still_ends(
    mosquitto: Broker, collector: Collector, recorder_factory: Any, tmp_path: Path
) -> None:
    rec: Recorder = recorder_factory("roomwatch/v1/lincoln/room-7/+")
    agent = AgentProcess(mosquitto, tmp_path)
    try:
        rec.wait_for(status("online"), timeout=20)
        agent.send("door_closed on", "motion on")  # a student is in, the door shut behind
        _, raw = rec.wait_for(episode("started"), timeout=10)
        episode_id = json.loads(raw)["episode_id"]
        died = agent.kill()
        _, raw = rec.wait_for(status("offline"), timeout=3 * KEEPALIVE_S)
        will_after = time.monotonic() - died
        # Mosquitto drops a silent client after 1.5 keepalives; allow its one-second tick.
        assert will_after <= 1.5 * KEEPALIVE_S + 1.0, f"last will after {will_after:.1f} s"
    finally:
        agent.stop()

    agent = AgentProcess(mosquitto, tmp_path)  # same state dir: same outbox
    try:
        # Restarted with the door open and no motion: the resumed episode ends when empty.
        _, raw = rec.wait_for(episode("ended"), timeout=30)
        ended = json.loads(raw)
        assert ended["episode_id"] == episode_id
        assert ended["reason"] == "room_empty"
        assert wait_until(lambda: collector.counters.stored > 0 and _drained(tmp_path), timeout=30)
    finally:
        agent.stop()

    db = sqlite3.connect(tmp_path / "collector.db")
    rows = db.execute(
        "select seq, json_extract(body, '$.event'), json_extract(body, '$.episode_id') "
        "from message where room = 'room-7' and seq is not null order by seq"
    ).fetchall()
    seqs = [r[0] for r in rows]
    assert seqs == list(range(len(seqs))), "every number once, nothing lost to the kill"
    assert [(e, i) for _, e, i in rows if e in ("started", "ended")] == [
        ("started", episode_id),
        ("ended", episode_id),
    ]
    assert b"resuming episode" in (tmp_path / "agent.log").read_bytes()


def _drained(folder: Path) -> bool:
    db = sqlite3.connect(folder / "state" / "agent.db")
    try:
        return bool(db.execute("select count(*) from outbox").fetchone()[0] == 0)
    finally:
        db.close()
