"""Review of the collector's performance changes: acks held back, the GIL switch interval,
and the bulk-reading MQTT client over TLS."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Broker, Recorder, wait_until
from roomwatch.collector import ack_book
from roomwatch.collector import writer as writer_module
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings, TlsSettings
from roomwatch.transport import MqttLink
from test_tls import tls_broker  # noqa: F401 - a fixture

SITE, ROOM = "oak", "calm-1"
ACK_TOPIC = wire.topic(SITE, ROOM, wire.Kind.ACK)
EVENT_TOPIC = wire.topic(SITE, ROOM, wire.Kind.EVENT)


def event(seq: int) -> bytes:
    body = {"v": 1, "id": f"e-{seq}", "seq": seq, "ts": wire.format_ts(WallClock().now())}
    return json.dumps(body | {"site": SITE, "room": ROOM, "type": "staff_checkin"}).encode()


def acked(recorder: Recorder) -> list[int]:
    return [json.loads(p)["seq"] for t, p in list(recorder.messages) if t == ACK_TOPIC]


def make_collector(broker: Broker, tmp_path: Path) -> Collector:
    return Collector(
        CollectorConfig(
            mqtt=MqttSettings(host=broker.host, port=broker.port),
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
        ),
        WallClock(),
    )


@pytest.fixture
def collector(mosquitto: Broker, tmp_path: Path) -> Iterator[Collector]:
    service = make_collector(mosquitto, tmp_path)
    service.start(schedule=False)
    assert service.link.subscribed.wait(10)
    yield service
    service.stop()


def test_an_ack_held_back_is_sent_when_the_collector_stops(
    monkeypatch: pytest.MonkeyPatch,
    collector: Collector,
    recorder_factory: Callable[..., Recorder],
) -> None:
    # Held back for longer than the test lasts: only stop() can send it.
    monkeypatch.setattr(ack_book, "ACK_EVERY_S", 600.0)
    agent = recorder_factory(ACK_TOPIC)
    agent.publish(EVENT_TOPIC, event(0))
    agent.wait_for(lambda t, p: t == ACK_TOPIC and json.loads(p)["seq"] == 0)
    agent.publish(EVENT_TOPIC, event(1))
    assert wait_until(lambda: collector.counters.stored == 2)
    assert acked(agent) == [0]  # stored, and its ack held back

    collector.stop()

    # Retained: what an agent that connects now learns is safe to forget.
    agent.wait_for(lambda t, p: t == ACK_TOPIC and json.loads(p)["seq"] == 1)
    assert acked(agent) == [0, 1]


def test_the_switch_interval_is_put_back_when_the_collector_stops(
    mosquitto: Broker, tmp_path: Path
) -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)  # process-wide: whatever the process had, it gets back
    try:
        collector = make_collector(mosquitto, tmp_path)
        collector.start(schedule=False)
        try:
            wanted = writer_module.SWITCH_INTERVAL_S
            assert wait_until(lambda: sys.getswitchinterval() == pytest.approx(wanted))
        finally:
            collector.stop()
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(before)


def test_the_bulk_client_over_tls_loses_and_repeats_nothing_in_a_burst(
    tls_broker: tuple[int, Path, Path],  # noqa: F811 - the fixture imported from test_tls
) -> None:
    """Packets cut at the 64 kB read buffer and at TLS records, PUBACKs merged: every message
    arrives once, in order, the connection stays up, and a publish from another thread
    still wakes the network thread."""
    port, pki, _ = tls_broker
    tls = TlsSettings(ca_file=pki / "ca.pem")
    got: list[bytes] = []
    bulk = MqttLink(
        MqttSettings(
            host="127.0.0.1",
            port=port,
            tls=tls,
            username="collector",
            password_file=pki / "collector-password",
        ),
        "bulk",
        subscriptions=["burst/#"],
        on_message=lambda topic, payload: got.append(payload),
        bulk_io=True,
    )
    sender = MqttLink(
        MqttSettings(
            host="127.0.0.1",
            port=port,
            tls=tls,
            username="lincoln-room-101",
            password_file=pki / "agent-password",
        ),
        "sender",
        subscriptions=["back/#"],
        on_message=lambda topic, payload: got.append(b"back:" + payload),
    )
    bulk.start()
    sender.start()
    try:
        assert bulk.subscribed.wait(15) and sender.subscribed.wait(15)
        sent = [b"%06d" % n + b"x" * (n * 37 % 1500) for n in range(3000)]
        # In bursts of 500 (about 375 kB each, several 64 kB reads): the broker's default
        # queue (1,000 messages) would drop QoS 1 messages for a subscriber that lags
        # further behind, on a busy machine, and that would be the broker, not the client.
        for start in range(0, len(sent), 500):
            infos = [sender.publish("burst/1", p, qos=1) for p in sent[start : start + 500]]
            infos[-1].wait_for_publish(30)
            end = start + len(infos)

            def arrived(end: int = end) -> bool:
                return len(got) >= end

            assert wait_until(arrived, timeout=30), (end, len(got))
        assert got == sent  # none lost, none twice (a bad PUBACK would mean redeliveries)
        assert bulk.connected.is_set()
        bulk.publish("back/1", b"from another thread", qos=1)
        assert wait_until(lambda: got[-1:] == [b"back:from another thread"], timeout=5)
    finally:
        sender.stop()
        bulk.stop()
