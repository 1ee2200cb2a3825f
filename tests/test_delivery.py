"""Store-and-forward, end to end, against real Mosquitto processes that are SIGKILLed.

Issue 3: a broker killed mid-episode and restarted after a 10-minute outage;
every message the agent produced reaches the collector, none twice in the
stored outcome. The agent runs on the virtual clock, so ten minutes of the
room pass in a second; the broker and the network are real.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import Broker, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core.clock import VirtualClock, WallClock
from roomwatch.core.room import Input
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model
from roomwatch.hardware.gpio import drive

ROOM = """
site: lincoln
room: room-101
sensors:
  door_lock:   {kind: contact, pin: 17}
  door_closed: {kind: contact, pin: 27}
  motion:      {kind: pir, pin: 22}
outputs:
  lock_permit: {pin: 16}
timing:
  telemetry_interval_s: 1
  occupancy_hold_s: 30
  empty_debounce_s: 60
  ack_stall_s: 2
"""


class Rig:
    """A collector and one agent on the virtual clock, both on a real broker."""

    def __init__(self, broker: Broker, folder: Path) -> None:
        self.broker = broker
        self.db = folder / "collector.db"
        mqtt = MqttSettings(host=broker.host, port=broker.port, keepalive_s=5)
        # The agent lives on a virtual clock that starts on a fixed day long past, far behind
        # the collector's wall clock: the window must believe its times, or a replay is
        # judged by arrival and never counts as late.
        years = 10 * 365 * 86400
        self.collector = Collector(
            CollectorConfig(mqtt=mqtt, database_url=f"sqlite:///{self.db}", clock_behind_s=years),
            WallClock(),
        )
        config = parse_model(ROOM, AgentConfig).model_copy(
            update={"mqtt": mqtt, "state_dir": folder / "agent"}
        )
        self.clock = VirtualClock()
        self.agent = AgentService(config, self.clock, MockFactory(), schedule=False)

    def start(self) -> None:
        self.collector.start()
        self.agent.start()
        assert self.collector.link.subscribed.wait(10)
        assert self.agent.link.subscribed.wait(10)

    def stop(self) -> None:
        self.agent.stop()
        self.collector.stop()

    def set(self, name: Input, value: bool) -> None:
        drive(self.agent.devices.inputs[name], value)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)
            self.agent.agent.tick()

    def drained(self, timeout: float = 60) -> bool:
        """Everything the agent produced is stored and acknowledged."""
        return wait_until(lambda: len(self.agent.outbox) == 0, timeout=timeout, interval=0.05)

    def stored(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.db)
        rows = db.execute(
            "select body from message where room = 'room-101' and seq is not null order by seq"
        ).fetchall()
        db.close()
        return [json.loads(body) for (body,) in rows]


@pytest.fixture
def rig(packaged_mosquitto: Broker, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(packaged_mosquitto, tmp_path)
    r.start()
    yield r
    r.stop()


def test_the_collector_acknowledges_and_the_outbox_empties(rig: Rig) -> None:
    rig.run(20)
    assert rig.drained(), f"{len(rig.agent.outbox)} message(s) never acknowledged"
    stored = rig.stored()
    assert [m["seq"] for m in stored] == list(range(rig.agent.outbox.last_seq + 1))


def test_a_broker_killed_mid_episode_for_ten_minutes_loses_nothing(rig: Rig) -> None:
    rig.set(Input.DOOR_CLOSED, False)
    rig.set(Input.MOTION, True)  # a student comes in: the episode starts
    rig.set(Input.DOOR_CLOSED, True)
    rig.run(30)
    assert rig.drained()
    episode_id = rig.agent.agent.state.episode.id  # type: ignore[union-attr]

    rig.broker.kill()  # SIGKILL: no save since start (Debian's autosave is every 30 min)
    assert wait_until(lambda: not rig.agent.link.connected.is_set(), timeout=10)
    rig.set(Input.MOTION, False)
    rig.run(300)
    rig.set(Input.DOOR_LOCK, True)  # the bolt is thrown during the outage: released locally
    assert rig.agent.devices.lock_permit is not None and not rig.agent.devices.lock_permit.is_on
    rig.run(5)
    rig.set(Input.DOOR_LOCK, False)
    rig.run(295)  # ten minutes of the room, with no broker
    produced_during_outage = rig.agent.outbox.last_seq
    assert len(rig.agent.outbox) >= 600

    rig.broker.start()  # same port, same persistence file
    assert rig.drained(timeout=90), f"{len(rig.agent.outbox)} left in the outbox"

    rig.set(Input.DOOR_CLOSED, False)  # the student leaves; the episode ends on the agent
    rig.run(100)
    assert rig.drained()

    stored = rig.stored()
    seqs = [m["seq"] for m in stored]
    assert seqs == list(range(rig.agent.outbox.last_seq + 1)), "every number, once"
    assert rig.agent.outbox.last_seq > produced_during_outage
    assert len({m["id"] for m in stored}) == len(stored)
    episodes = [m for m in stored if "event" in m and m.get("episode_id") == episode_id]
    assert [e["event"] for e in episodes] == ["started", "ended"]
    assert episodes[1]["reason"] == "room_empty"
    assert any(m.get("type") == "lock_released" for m in stored)
    db = sqlite3.connect(rig.db)
    alerts = db.execute(
        "select state, late from alert where type = 'door_locked_while_occupied'"
    ).fetchall()
    assert alerts == [("resolved", 1)], "raised late from the replay, then resolved"


def test_messages_a_collector_never_saw_arrive_by_stall_replay(rig: Rig) -> None:
    """The collector is replaced by one with a new session: nothing is queued for it on the
    broker, so only the agent's replay on a stalled acknowledgement can deliver what it missed."""
    rig.run(5)
    assert rig.drained()
    rig.collector.stop()
    rig.run(50)  # the agent publishes to no collector
    missed = rig.agent.outbox.last_seq
    config = rig.collector.config.model_copy(update={"name": "collector-2"})
    rig.collector = Collector(config, WallClock())
    rig.collector.start()
    assert rig.drained(timeout=60), f"{len(rig.agent.outbox)} left"
    assert rig.agent.sender.stall_replays >= 1
    assert [m["seq"] for m in rig.stored()] == list(range(rig.agent.outbox.last_seq + 1))
    assert rig.agent.outbox.last_seq >= missed
