"""Issue 14, finding 4: identities that cannot be borrowed.

A real Mosquitto runs the broker settings and ACL that ship in the package and that
docs/operations.md shows (the same files: a test below checks the page quotes them), with
only paths and the port changed. Another user connecting with the collector's client id
does not knock it off. And where client ids are not bound (a plain broker), the collector
notices the takeover: an error in its log, a counter in /metrics, a reason in /healthz."""

from __future__ import annotations

import getpass
import json
import logging
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import generate_latest

from conftest import MOSQUITTO, Broker, _accepting, free_port, wait_until
from pki import make_pki, run
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings, TlsSettings

BROKER_FILES = resources.files("roomwatch.firmware_config") / "broker"
SHIPPED_CONF = BROKER_FILES.joinpath("mosquitto.conf").read_text(encoding="utf-8")
SHIPPED_ACL = BROKER_FILES.joinpath("acl").read_text(encoding="utf-8")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"

COLLECTOR, AGENT, BOARD = "district-collector", "oak-middle-calm-room-2", "staff-board"
PASSWORD = "a-password-for-the-test"


def test_the_documented_broker_config_is_the_shipped_one() -> None:
    """One source: the page quotes the files the package ships and these tests run."""
    blocks = re.findall(r"```\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    assert SHIPPED_CONF in blocks, "docs/operations.md must quote broker/mosquitto.conf whole"
    assert SHIPPED_ACL in blocks, "docs/operations.md must quote broker/acl whole"
    assert "use_username_as_clientid true" in SHIPPED_CONF.splitlines()


def adapted(conf: str, port: int, folder: Path, pki: Path) -> str:
    """The shipped settings with this test's paths and port (and nothing else changed)."""
    swaps = {
        "password_file /etc/mosquitto/passwd": f"password_file {folder / 'passwd'}",
        "acl_file /etc/mosquitto/acl": f"acl_file {folder / 'acl'}",
        "listener 8883": f"listener {port} 127.0.0.1",
        "certfile /etc/mosquitto/certs/server.pem": f"certfile {pki / 'server.pem'}",
        "keyfile /etc/mosquitto/certs/server.key": f"keyfile {pki / 'server.key'}",
        "cafile /etc/mosquitto/certs/ca.pem": f"cafile {pki / 'ca.pem'}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {folder}/",
    }
    lines = conf.splitlines()
    for old, new in swaps.items():
        assert old in lines, f"the shipped config lost {old!r}: update this test"
        lines[lines.index(old)] = new
    # Started as root (CI), Mosquitto would drop to the mosquitto user, who cannot read
    # pytest's private temp folder: keep the user it was started with.
    return "\n".join([*lines, f"user {getpass.getuser()}"]) + "\n"


@dataclass
class HardenedBroker:
    port: int
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "pki" / "ca.pem"

    def settings(self, username: str) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1",
            port=self.port,
            tls=TlsSettings(ca_file=self.ca),
            username=username,
            password_file=self.folder / "password",
        )

    def client(self, username: str, client_id: str) -> mqtt.Client:
        """A plain paho client, connected (CONNACK received) as ``username``."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.username_pw_set(username, PASSWORD)
        client.tls_set(ca_certs=str(self.ca))
        accepted = threading.Event()

        def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
            if not rc.is_failure:
                accepted.set()

        client.on_connect = on_connect
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        assert accepted.wait(10), f"{username} could not connect"
        return client


@pytest.fixture
def hardened(tmp_path: Path) -> Iterator[HardenedBroker]:
    pki = make_pki(tmp_path / "pki").folder
    passwd = tmp_path / "passwd"
    for n, user in enumerate((COLLECTOR, AGENT, BOARD)):
        run("mosquitto_passwd", "-b", *(["-c"] if n == 0 else []), str(passwd), user, PASSWORD)
    (tmp_path / "acl").write_text(SHIPPED_ACL)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(adapted(SHIPPED_CONF, port, tmp_path, pki))
    with (tmp_path / "broker.log").open("wb") as log:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until(lambda: _accepting(port), timeout=10), (
            tmp_path / "broker.log"
        ).read_text()
        yield HardenedBroker(port, tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=10)


def telemetry(seq: int) -> bytes:
    body = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "seq": seq,
        "ts": wire.format_ts(WallClock().now()),
        "site": "oak-middle",
        "room": "calm-room-2",
        "temperature_c": 21.0,
        "lux": 300.0,
        "co2_ppm": None,
        "occupied": False,
        "door_closed": True,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": None,
    }
    return json.dumps(body).encode()


def collector_on(settings: MqttSettings, folder: Path) -> Collector:
    collector = Collector(
        CollectorConfig(mqtt=settings, database_url=f"sqlite:///{folder / 'c.db'}", http_port=None),
        WallClock(),
    )
    collector.start(schedule=False)
    assert collector.link.subscribed.wait(15), "the collector could not connect"
    return collector


def test_another_user_with_the_collectors_client_id_does_not_knock_it_off(
    hardened: HardenedBroker, tmp_path: Path
) -> None:
    collector = collector_on(hardened.settings(COLLECTOR), tmp_path)
    agent = hardened.client(AGENT, "agent")
    intruders = []
    try:
        for _ in range(3):
            # CONNACK received: had the broker let it take the id, it would have closed the
            # collector's connection before answering.
            intruders.append(hardened.client(BOARD, collector.link.client_id))
        for seq in range(3):
            agent.publish(
                "roomwatch/v1/oak-middle/calm-room-2/telemetry", telemetry(seq), qos=1
            ).wait_for_publish(5)
        # Received on the connection it had all along: a knocked-off collector would only
        # get these after reconnecting, and would have counted the disconnect first.
        assert wait_until(lambda: collector.counters.received >= 3, timeout=10)
        assert collector.link.takeover.disconnects == 0
        assert collector.health().ok, collector.health().reasons
    finally:
        for client in [*intruders, agent]:
            client.loop_stop()
            client.disconnect()
        collector.stop()


def knocked_off(collector: Collector, times: int) -> bool:
    return collector.link.takeover.disconnects >= times


def test_the_collector_notices_a_takeover_and_says_so(
    mosquitto: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker without the binding: someone connects with the collector's id, again and
    again (each time the collector takes it back). The collector says so: an error, a
    counter, /healthz."""
    collector = collector_on(MqttSettings(host=mosquitto.host, port=mosquitto.port), tmp_path)
    intruders = []
    try:
        with caplog.at_level(logging.WARNING, logger="roomwatch.transport.client"):
            for n in range(1, 4):
                intruder = mqtt.Client(
                    CallbackAPIVersion.VERSION2,
                    client_id=collector.link.client_id,
                    reconnect_on_failure=False,
                )
                accepted = threading.Event()
                intruder.on_connect = lambda *_, e=accepted: e.set()
                intruder.connect(mosquitto.host, mosquitto.port)
                intruder.loop_start()
                intruders.append(intruder)
                assert accepted.wait(10)
                assert wait_until(partial(knocked_off, collector, n), 10)
                assert collector.link.subscribed.wait(15), "the collector takes its id back"
        assert collector.link.takeover.takeovers >= 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert any("was taken over" in r.getMessage() for r in errors), caplog.text
        metrics = generate_latest(collector.observability.registry).decode()
        assert re.search(r"^roomwatch_mqtt_session_takeovers_total [1-9]", metrics, re.M), metrics
        assert re.search(r"^roomwatch_mqtt_disconnects_total 3\.0", metrics, re.M), metrics
        assert any("taken over" in r for r in collector.health().reasons)
    finally:
        for intruder in intruders:
            intruder.loop_stop()
            intruder.disconnect()
        collector.stop()
