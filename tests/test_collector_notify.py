"""Issue 4: with Apprise pointed at a local receiver, a critical alert reaches it, and an
unacknowledged one escalates to the second tier on time (virtual clock)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from test_collector_rules import Desk


class Receiver:
    """An HTTP endpoint that keeps every JSON notification Apprise posts, by path."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.cond:
                    receiver.got.append((self.path, body))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self, path: str) -> list[str]:
        with self.cond:
            return [body["title"] for p, body in self.got if p == f"/{path}"]

    def wait(self, path: str, count: int, timeout: float = 10) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.titles(path)) >= count, timeout), self.got
        return self.titles(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_critical_alert_reaches_tier_one_then_escalates_to_tier_two_on_time(
    tmp_path: Path, receiver: Receiver
) -> None:
    desk = Desk(tmp_path, notify={"tiers": [[receiver.url("tier1")], [receiver.url("tier2")]]})
    try:
        locked = {"door_locked": True}
        desk.telemetry(**locked)
        (first,) = receiver.wait("tier1", 1)
        assert first.startswith("[CRITICAL] door locked while occupied in lincoln/room-5: raised")
        desk.wait(59, telemetry=locked)
        assert receiver.titles("tier2") == [], "not before 60 s"
        desk.wait(1, telemetry=locked)
        (second,) = receiver.wait("tier2", 1)
        assert second.endswith(": escalated")
        (alert,) = desk.collector.desk.open.values()
        desk.collector.acknowledge(alert.alert_id, "user-17")
        titles = receiver.wait("tier1", 2)
        assert titles[1].endswith("acknowledged by user-17")
        desk.wait(300, telemetry=locked)
        assert len(receiver.titles("tier2")) == 1, "no more escalation once acknowledged"
        db = sqlite3.connect(desk.db)
        assert wait_until(
            lambda: db.execute("select count(*) from delivery_attempt").fetchone()[0] == 3
        )
        # Each channel records its attempts on its own thread: tier 2's "escalated" and tier
        # 1's "acknowledged" may reach the writer in either order (the titles above show the
        # order the people heard them in).
        attempts = db.execute("select state, tier, ok from delivery_attempt").fetchall()
        assert sorted(attempts) == [("acknowledged", 1, 1), ("escalated", 2, 1), ("raised", 1, 1)]
        assert all("127.0.0.1" in c for (c,) in db.execute("select channel from delivery_attempt"))
    finally:
        desk.close()


def test_a_warning_is_told_once_and_never_escalated(tmp_path: Path, receiver: Receiver) -> None:
    desk = Desk(tmp_path, notify={"tiers": [[receiver.url("tier1")], [receiver.url("tier2")]]})
    try:
        desk.telemetry(temperature_c=31.0)
        (title,) = receiver.wait("tier1", 1)
        assert title.startswith("[WARNING] temperature out of range")
        desk.wait(600, telemetry={"temperature_c": 31.0})
        assert receiver.titles("tier2") == []
        desk.telemetry(temperature_c=21.0)  # resolved: no follow-up for a warning
        assert len(receiver.titles("tier1")) == 1
    finally:
        desk.close()
