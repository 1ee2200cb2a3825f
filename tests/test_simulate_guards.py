"""What the simulator found in the programs, pinned: each of these failed before its fix."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import wait_until
from roomwatch.core import wire
from test_agent import Bench
from test_collector_rules import IN_EPISODE, ROOM, SITE, Desk


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    b = Bench(tmp_path)
    yield b
    b.close()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.close()


def test_the_agent_ignores_another_rooms_ack_and_command(bench: Bench) -> None:
    """amqtt 0.12 hands a new client other clients' retained acks."""
    bench.run(20)
    before = len(bench.outbox)
    ack = wire.Ack(id="a", ts=bench.clock.now(), site="oak", room="calm-3", seq=3)
    bench.agent.on_message(wire.topic("oak", "calm-3", "ack"), wire.encode(ack))
    assert len(bench.outbox) == before, "another room's ack must not forget our messages"
    command = wire.Command(
        id="c",
        ts=bench.clock.now(),
        site="oak",
        room="calm-3",
        action=wire.CommandAction.START_EPISODE,
    )
    bench.agent.on_message(wire.topic("oak", "calm-3", "cmd"), wire.encode(command))
    assert bench.agent.state.episode is None


def test_the_collector_neither_stores_nor_counts_an_ack(desk: Desk) -> None:
    ack = wire.Ack(id="ack-1", ts=desk.clock.now(), site=SITE, room=ROOM, seq=5)
    desk.collector.on_message(wire.topic(SITE, ROOM, "ack"), wire.encode(ack))
    desk.telemetry()
    assert wait_until(lambda: desk.collector.counters.stored == 1)
    rows = sqlite3.connect(desk.db).execute("select id from message").fetchall()
    assert rows == [("m0",)]


def test_staff_away_before_the_episode_is_no_lapse_in_it(desk: Desk) -> None:
    desk.telemetry(occupied=False, staff_present=False)
    desk.wait(60)
    desk.episode("started")
    desk.telemetry(staff_present=False, **IN_EPISODE)
    desk.collector.tick()
    assert "monitoring_lapse" not in desk.open_types()
    desk.wait(11)
    assert "monitoring_lapse" in desk.open_types(), "away 11 s into the episode"


def test_a_last_will_is_judged_when_it_arrives(desk: Desk) -> None:
    """A will carries the time it was made (at connect), not the time it fired."""
    made = desk.clock.now()
    desk.status("online")
    desk.clock.advance(600)
    will = {
        "v": 1,
        "id": "will-1",
        "ts": wire.format_ts(made),
        "site": SITE,
        "room": ROOM,
        "seq": None,
        "state": "offline",
        "agent_version": "0.1.0",
        "config_digest": "d",
        "profile": "default",
    }
    desk.collector.on_message(wire.topic(SITE, ROOM, "status"), json.dumps(will).encode())
    (alert,) = [a for a in desk.collector.desk.open.values() if a.type.value == "agent_offline"]
    assert alert.raised_at == made + timedelta(seconds=600)
    assert alert.late is False
