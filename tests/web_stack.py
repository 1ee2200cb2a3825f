"""A running web app on a real collector, a real Mosquitto and a real SQLite, with one user
per role, and an "agent" that publishes wire messages as a room would."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Broker, wait_until
from roomwatch.collector.config import CollectorConfig, WebSettings
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings
from roomwatch.web.app import WebServer
from roomwatch.web.auth import create_user

PASSWORD = "correct horse battery staple"
USERS = {"ada": "admin", "sam": "staff", "aud": "auditor"}


class FakeAgent:
    """Publishes what a room's agent would, with its own sequence numbers."""

    _ids = itertools.count()

    def __init__(self, broker: Broker, site: str, room: str) -> None:
        self.site, self.room = site, room
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fake-{room}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, kind: str, **fields: Any) -> None:
        body: dict[str, Any] = {
            "v": 1,
            "id": f"{self.room}-{next(self._ids)}",
            "ts": wire.format_ts(datetime.now(UTC)),
            "site": self.site,
            "room": self.room,
            **fields,
        }
        if kind != "status":
            self.seq += 1
            body["seq"] = self.seq
        info = self.client.publish(
            wire.topic(self.site, self.room, kind), json.dumps(body).encode(), qos=1
        )
        info.wait_for_publish(5)

    def status(self, profile: str = "us-mi") -> None:
        self.send(
            "status",
            state="online",
            agent_version="0.1.0",
            config_digest="sha256:abc",
            profile=profile,
            acked_seq=0,
        )

    def telemetry(self, **fields: Any) -> None:
        base: dict[str, Any] = {
            "temperature_c": 21.0,
            "lux": 320.0,
            "co2_ppm": None,
            "occupied": False,
            "door_closed": False,
            "door_locked": False,
            "staff_present": None,
            "lock_permit": True,
            "episode_id": None,
        }
        self.send("telemetry", **{**base, **fields})

    def episode(self, event: str, episode_id: str, started_at: datetime) -> None:
        self.send(
            "episode",
            event=event,
            episode_id=episode_id,
            started_at=wire.format_ts(started_at),
            ended_at=wire.format_ts(datetime.now(UTC)) if event == "ended" else None,
            reason="occupancy",
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class WebStack:
    def __init__(self, broker: Broker, folder: Path) -> None:
        self.broker = broker
        self.config = CollectorConfig(
            mqtt=MqttSettings(port=broker.port),
            database_url=f"sqlite:///{folder / 'collector.db'}",
            http_port=None,
            web=WebSettings(port=0, vapid_key_file=folder / "vapid.pem"),
        )
        self.collector = Collector(self.config, WallClock())
        self.collector.start()
        assert wait_until(self.collector.link.subscribed.is_set, 10)
        now = datetime.now(UTC)
        self.user_ids = {
            name: create_user(
                self.collector.store.engine, name, name.title(), role, PASSWORD, "test", now
            ).id
            for name, role in USERS.items()
        }
        self.web = WebServer(self.collector, self.config.web)
        self.web.start()
        self.url = self.web.url
        self.agents: list[FakeAgent] = []
        self.closers: list[Callable[[], object]] = []

    def agent(self, site: str = "lincoln", room: str = "room-101") -> FakeAgent:
        agent = FakeAgent(self.broker, site, room)
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        for closer in self.closers:
            closer()
        self.web.stop()
        self.collector.stop()


@pytest.fixture
def web_stack(mosquitto: Broker, tmp_path: Path) -> Iterator[WebStack]:
    stack = WebStack(mosquitto, tmp_path)
    yield stack
    stack.close()
