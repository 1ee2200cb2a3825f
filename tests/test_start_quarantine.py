"""Issue 14: a start that cannot be poisoned. Whatever the database holds, the collector
starts: an unreadable row is quarantined (logged, counted in /metrics, left in place) and the
rest rebuilds. Real Mosquitto, real SQLite file, rows written straight into it."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hostile
from conftest import Broker, Recorder, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings

SITE = "oak"
CRITICAL = "door_locked_while_occupied"


def telemetry(clock: VirtualClock, room: str, seq: int, **fields: Any) -> dict[str, Any]:
    return hostile.telemetry(seq, seq, wire.format_ts(clock.now()), room, site=SITE, **fields)


#: Rows a fuzzer (or a past bug, or a hand edit) can leave behind: (table, columns).
def poison(clock: VirtualClock) -> list[tuple[str, dict[str, Any]]]:
    now = clock.now().replace(tzinfo=None).isoformat(" ", "microseconds")
    good = telemetry(clock, "room-1", 99, door_locked=False, occupied=False)
    year_one = telemetry(clock, "room-1", 98) | {"ts": "1-01-01T00:00:00.000Z"}  # the old bug

    def message(id_: str, kind: str, body: str, **over: Any) -> tuple[str, dict[str, Any]]:
        row = {"id": id_, "site": SITE, "room": "room-1", "kind": kind, "seq": 1, "ts": now}
        return "message", row | {"received_at": now, "body": body} | over

    return [
        message("p-not-json", "telemetry", "{not json"),
        message("p-array", "telemetry", "[1, 2]"),
        message("p-year-one", "telemetry", json.dumps(year_one)),
        message("p-kind", "bogus", json.dumps(good)),
        message("p-ack", "ack", json.dumps({**good, "seq": 5})),
        message("p-other-room", "telemetry", json.dumps(good), room="room-9"),
        message("p-when", "telemetry", json.dumps(good), received_at="yesterday-ish"),
        message("p-episode", "episode", '{"v": 1, "event": "started"}'),
        message("p-event", "event", "\x00\xff binary"),
        message("p-nan", "telemetry", json.dumps({**good, "temperature_c": float("nan")})),
        (
            "alert",
            {
                "alert_id": "p-alert-type", "site": SITE, "room": "room-1", "type": "no_such_type",
                "severity": "critical", "state": "raised", "episode_id": None, "raised_at": now,
                "updated_at": now, "message": "?", "late": 0, "subject": None, "tier": 1,
                "notified_at": None, "acknowledged_by": None,
            },
        ),
        (
            "alert",
            {
                "alert_id": "p-alert-time", "site": SITE, "room": "room-1", "type": CRITICAL,
                "severity": "critical", "state": "raised", "episode_id": None,
                "raised_at": "not a time", "updated_at": now, "message": "?", "late": 0,
                "subject": None, "tier": "x", "notified_at": None, "acknowledged_by": None,
            },
        ),
        ("agent_progress", {"site": SITE, "room": "room-7", "acked_seq": "abc", "updated_at": now}),
        ("agent_progress", {"site": SITE, "room": "room-8", "acked_seq": -5, "updated_at": now}),
    ]  # fmt: skip


@pytest.fixture
def start(mosquitto: Broker, tmp_path: Path) -> Iterator[Callable[[VirtualClock], Collector]]:
    started: list[Collector] = []

    def make(clock: VirtualClock) -> Collector:
        service = Collector(
            CollectorConfig(
                mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
                database_url=f"sqlite:///{tmp_path / 'c.db'}",
                http_port=0,
            ),
            clock,
        )
        service.start(schedule=False)
        started.append(service)
        assert service.link.subscribed.wait(10)
        return service

    yield make
    for service in started:
        service.stop()


def raised(recorder: Recorder, room: str) -> Callable[[str, bytes], bool]:
    def match(topic: str, payload: bytes) -> bool:
        body = json.loads(payload)
        return (
            topic == wire.topic(SITE, room, "alerts")
            and body["type"] == CRITICAL
            and body["state"] == "raised"
        )

    return match


def test_the_collector_starts_on_a_poisoned_database_and_still_raises(
    start: Callable[[VirtualClock], Collector],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    recorder = recorder_factory(wire.subscription(wire.Kind.ALERTS))
    first = start(clock)
    recorder.publish(
        wire.topic(SITE, "room-1", "telemetry"), json.dumps(telemetry(clock, "room-1", 0))
    )
    recorder.wait_for(raised(recorder, "room-1"), timeout=10)
    assert wait_until(lambda: first.counters.stored == 1)
    first.stop()

    db = sqlite3.connect(tmp_path / "c.db")
    rows = poison(clock)
    for table, row in rows:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"insert into {table} ({names}) values ({marks})", list(row.values()))
    db.commit()

    clock.advance(5)
    second = start(clock)  # every one of those rows stopped this before, or would have
    # Rows it never needs (an unknown kind, an ack, an event that is no fact) stay unread.
    assert second.counters.quarantined == {"message": 7, "alert": 2, "agent_progress": 2}
    assert CRITICAL in {a.type.value for a in second.open_alerts()}, "room-1's alert kept"
    view = second.room_snapshot((SITE, "room-1"))
    assert view is not None and view.view.telemetry is not None
    assert view.view.telemetry.door_locked is True, "rebuilt from the readable rows"

    port = second.observability.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'roomwatch_rows_quarantined_total{table="message"} 7.0' in metrics

    recorder.publish(
        wire.topic(SITE, "room-2", "telemetry"), json.dumps(telemetry(clock, "room-2", 0))
    )
    recorder.wait_for(raised(recorder, "room-2"), timeout=10)
    kept = db.execute("select count(*) from message where id like 'p-%'").fetchone()[0]
    assert kept == 10, "quarantined rows are left in place for a person to look at"
