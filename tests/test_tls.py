"""An agent reaching a TLS listener with a username and a password file (issue 3), and the
collector's alert coming back over it; certificates made here with openssl."""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import MOSQUITTO, _accepting, free_port, wait_until
from pki import make_pki, run
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, TlsSettings, parse_model


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """A Mosquitto TLS listener on 127.0.0.1 that wants a username and password."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is not installed (apt-get install mosquitto)")
    d = make_pki(tmp_path / "pki").folder
    passwords = d / "passwd"
    run("mosquitto_passwd", "-b", "-c", str(passwords), "lincoln-room-101", "s3cret-for-the-test")
    run("mosquitto_passwd", "-b", str(passwords), "collector", "another-s3cret")
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
        "persistence false\n"
        f"message_size_limit {wire.MAX_PAYLOAD_BYTES}\n"  # as docs/operations.md sets it
        # Started as root (CI), Mosquitto would drop to the mosquitto user, who cannot
        # read pytest's private temp folder: keep the user it was started with.
        f"user {getpass.getuser()}\n"
    )
    (d / "agent-password").write_text("s3cret-for-the-test\n")
    (d / "collector-password").write_text("another-s3cret\n")
    with (d / "log").open("wb") as log:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until(lambda: _accepting(port), timeout=10), (d / "log").read_text()
        yield port, d, passwords
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_agent_and_collector_over_tls_with_passwords(
    tls_broker: tuple[int, Path, Path], tmp_path: Path
) -> None:
    port, pki, _ = tls_broker
    tls = TlsSettings(ca_file=pki / "ca.pem")
    collector = Collector(
        CollectorConfig(
            mqtt=MqttSettings(
                host="127.0.0.1",
                port=port,
                tls=tls,
                username="collector",
                password_file=pki / "collector-password",
            ),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            http_port=None,
        ),
        WallClock(),
    )
    collector.start()
    config = parse_model(
        "site: lincoln\nroom: room-101\nsensors:\n  door_lock: {kind: contact, pin: 17}\n"
        "  motion: {kind: pir, pin: 22}\n",
        AgentConfig,
    ).model_copy(
        update={
            "mqtt": MqttSettings(
                host="127.0.0.1",
                port=port,
                tls=tls,
                username="lincoln-room-101",
                password_file=pki / "agent-password",
            ),
            "state_dir": tmp_path / "agent",
        }
    )
    agent = AgentService(config, WallClock(), MockFactory())
    agent.start()
    try:
        assert agent.link.subscribed.wait(15), "the agent could not connect over TLS"
        assert collector.link.subscribed.wait(15)
        assert wait_until(lambda: len(agent.outbox) == 0, timeout=20), "stored and acknowledged"
    finally:
        agent.stop()
        collector.stop()


def test_a_wrong_password_is_refused_and_the_agent_keeps_its_interlock(
    tls_broker: tuple[int, Path, Path], tmp_path: Path
) -> None:
    port, pki, _ = tls_broker
    (tmp_path / "wrong").write_text("not-the-password\n")
    config = parse_model(
        "sensors:\n  door_lock: {kind: contact, pin: 17}\n  motion: {kind: pir, pin: 22}\n"
        "outputs:\n  lock_permit: {pin: 16}\n",
        AgentConfig,
    ).model_copy(
        update={
            "mqtt": MqttSettings(
                host="127.0.0.1",
                port=port,
                tls=TlsSettings(ca_file=pki / "ca.pem"),
                username="lincoln-room-101",
                password_file=tmp_path / "wrong",
            ),
            "state_dir": tmp_path / "agent",
        }
    )
    factory = MockFactory()
    agent = AgentService(config, WallClock(), factory)
    agent.start()
    try:
        assert not agent.link.connected.wait(3)
        factory.pin(22).drive_high()  # motion: the permit must still be withdrawn locally
        assert factory.pin(16).state is False
        assert agent.agent.state.occupied is True
        assert json.loads(agent.outbox.after(-1)[-1].payload)["seq"] >= 0, "kept for later"
    finally:
        agent.stop()
