"""Review of the collector's performance changes: acks held back, the GIL switch interval,
and the bulk-reading MQTT client over TLS."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Broker, Recorder, wait_until
from roomwatch.collector import service as service_module
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config import MqttSettings

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
    monkeypatch.setattr(service_module, "ACK_EVERY_S", 600.0)
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
            wanted = service_module.SWITCH_INTERVAL_S
            assert wait_until(lambda: sys.getswitchinterval() == pytest.approx(wanted))
        finally:
            collector.stop()
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(before)
