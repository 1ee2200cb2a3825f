"""Shared fixtures: a real Mosquitto on a free port, and an MQTT recorder to wait on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roomwatch.core import wire
from waiting import wait_until

pytest_plugins = ["postgres", "web_stack"]

__all__ = ["Broker", "Recorder", "free_port", "wait_until"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A real Mosquitto process that a test may kill (SIGKILL) and start again on the same port."""

    def __init__(self, folder: Path, packaged_settings: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.folder = folder / f"broker-{self.port}"
        self.folder.mkdir(parents=True)
        folder = self.folder
        self.log = folder / "mosquitto.log"
        conf = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "log_dest stderr"]
        # As docs/operations.md sets it: the wire's own limit (wire.MAX_PAYLOAD_BYTES), so an
        # oversize payload never reaches a subscriber (Mosquitto 2.0.11 takes this name).
        conf.append(f"message_size_limit {wire.MAX_PAYLOAD_BYTES}")
        if packaged_settings:
            # What Debian's package sets: persistence on, saved every 30 minutes (the default),
            # so a SIGKILL loses whatever arrived since the last save.
            conf += ["persistence true", f"persistence_location {folder}/"]
        else:
            # The collector is the subject here, not the broker's queue limit (Debian's
            # default of 1,000 queued messages is what packaged_mosquitto keeps).
            conf += ["persistence false", "max_queued_messages 100000"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.fail(
                "Mosquitto is not installed: run `apt-get install mosquitto` (.ci/run does)"
            )
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        if not wait_until(lambda: _accepting(self.port), timeout=10):
            pytest.fail(f"Mosquitto did not start on port {self.port}: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto for one test (installed by .ci/run; never skipped)."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def packaged_mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with Debian's packaged persistence settings."""
    broker = Broker(tmp_path, packaged_settings=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Recorder:
    """A plain paho client that records every message on its subscriptions."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "recorder could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[str, bytes], bool], timeout: float = 5.0
    ) -> tuple[str, bytes]:
        """The first message satisfying ``predicate``, waiting for it if need be."""
        with self._cond:
            found: list[tuple[str, bytes]] = []

            def match() -> bool:
                found[:] = [m for m in self.messages if predicate(*m)]
                return bool(found)

            if not self._cond.wait_for(match, timeout):
                seen = "\n".join(f"  {t} {p[:200]!r}" for t, p in self.messages) or "  (nothing)"
                raise AssertionError(f"no matching message within {timeout} s; received:\n{seen}")
            return found[0]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder_factory(mosquitto: Broker) -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(*topics: str) -> Recorder:
        r = Recorder(mosquitto, *topics)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ------------------------------------------------------------------ systemd's notify socket


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # systemd's WatchdogSec=0.4
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket, wanted: str, limit: int = 100) -> list[str]:
    """What the program under test told systemd, up to and including ``wanted``."""
    seen = []
    for _ in range(limit):
        message = sock.recv(256).decode()
        seen.append(message)
        if message == wanted:
            return seen
    raise AssertionError(f"{wanted!r} never came; got {seen}")
