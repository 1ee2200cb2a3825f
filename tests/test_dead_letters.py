"""Issue 14, finding 3: bounded by construction. Dead letters keep a prefix with the size and
hash, under per-room and total caps (what is over is counted); the broker drops what is over
the wire's size limit."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from conftest import Broker, Recorder, wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.dead_letters import PREFIX_BYTES
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings
from test_collector_rules import Desk


def dead(db: Path) -> list[tuple[str, int, int, str]]:
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "select source, length(payload), payload_size, payload_sha256 from dead_letter"
            " order by id"
        )
        return list(rows)


def test_dead_letters_keep_a_prefix_and_stop_at_their_caps(tmp_path: Path) -> None:
    desk = Desk(tmp_path, dead_letters_per_agent=5, dead_letters_total=8)
    try:
        huge = b"{" + b"x" * (1024 * 1024)
        desk.collector.on_message(wire.topic("oak", "room-1", "telemetry"), huge)
        for n in range(9):
            desk.collector.on_message(wire.topic("oak", "room-1", "event"), b"bad %d" % n)
        for n in range(10):
            desk.collector.on_message(wire.topic("oak", "room-2", "event"), b"bad %d" % n)
        assert desk.collector.counters.invalid == 20
        assert wait_until(lambda: len(dead(desk.db)) == 8, timeout=10)
        rows = dead(desk.db)
        first = rows[0]
        assert first == ("oak/room-1", PREFIX_BYTES, len(huge), hashlib.sha256(huge).hexdigest())
        assert [r[0] for r in rows].count("oak/room-1") == 5, "the per-room cap"
        assert [r[0] for r in rows].count("oak/room-2") == 3, "the total cap"
        assert desk.collector.counters.dead_letters_dropped == 12
        assert desk.db.stat().st_size < 256 * 1024, "1 MB of junk stored as 1 KiB"
    finally:
        desk.close()
    again = Desk(tmp_path, dead_letters_per_agent=5, dead_letters_total=8)
    try:
        again.collector.on_message(wire.topic("oak", "room-3", "event"), b"bad")
        assert again.collector.counters.dead_letters_dropped == 1, "the caps count what is kept"
    finally:
        again.close()


def test_the_broker_drops_what_is_over_the_size_limit(
    mosquitto: Broker, recorder_factory: Callable[..., Recorder], tmp_path: Path
) -> None:
    clock = VirtualClock()
    service = Collector(
        CollectorConfig(
            mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=None,
        ),
        clock,
    )
    service.start(schedule=False)
    try:
        assert service.link.subscribed.wait(10)
        sender = recorder_factory("nothing/here")
        topic = wire.topic("oak", "room-1", "event")
        sender.publish(topic, b"{" + b" " * wire.MAX_PAYLOAD_BYTES)  # one byte over
        ok = {"v": 1, "id": "ok-1", "seq": 0, "ts": wire.format_ts(clock.now())}
        ok |= {"site": "oak", "room": "room-1", "type": "staff_checkin"}
        sender.publish(topic, json.dumps(ok))
        assert wait_until(lambda: service.counters.stored == 1, timeout=10)
        assert service.counters.received == 1, "the oversize payload reached the collector"
    finally:
        service.stop()


def test_a_message_the_database_refuses_holds_up_nothing(tmp_path: Path) -> None:
    """A row the database will never take (here a real SQLite trigger refuses it, as
    PostgreSQL refused an Infinity) was retried forever, with every message after it."""
    desk = Desk(tmp_path)
    try:
        with sqlite3.connect(desk.db) as c:
            c.execute(
                "create trigger refuse before insert on message when new.id = 'm1'"
                " begin select raise(abort, 'this row is refused'); end"
            )
        for _ in range(3):  # m0, m1 (refused), m2
            desk.telemetry(door_locked=True)
        assert "door_locked_while_occupied" in desk.open_types()

        def stored() -> list[str]:
            with sqlite3.connect(desk.db) as c:
                return [r[0] for r in c.execute("select id from message order by id")]

        assert wait_until(lambda: stored() == ["m0", "m2"], timeout=30), stored()
        with sqlite3.connect(desk.db) as c:
            (reason,) = c.execute("select reason from dead_letter").fetchone()
            assert "the database refused it" in reason and "this row is refused" in reason
            assert wait_until(
                lambda: c.execute("select acked_seq from agent_progress").fetchall() == [(2,)]
            ), "the refused message's number held the acknowledgement"
            alerts = c.execute("select count(*) from alert where state = 'raised'").fetchone()
            assert alerts == (1,), "the alert step stored with the first message"
        assert not desk.collector.counters.last_write_failed
        assert desk.collector.writer.alive()
    finally:
        desk.close()
