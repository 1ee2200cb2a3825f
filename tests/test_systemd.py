"""The agent under systemd: READY, a watchdog heartbeat only while its loop ticks, STOPPING.
A real Unix datagram socket stands in for systemd's notify socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import received
from roomwatch.core.clock import WallClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model
from roomwatch.transport import systemd


def test_ready_heartbeats_and_stopping(notify_socket: socket.socket, tmp_path: Path) -> None:
    assert systemd.watchdog_interval_s() == pytest.approx(0.2)
    config = parse_model("timing: {sample_interval_s: 0.1}\n", AgentConfig).model_copy(
        update={"mqtt": MqttSettings(port=1), "state_dir": tmp_path / "a"}  # no broker: not needed
    )
    service = AgentService(config, WallClock(), MockFactory())
    service.start()
    try:
        assert received(notify_socket, "READY=1")[-1] == "READY=1"
        received(notify_socket, "WATCHDOG=1")
        received(notify_socket, "WATCHDOG=1")
    finally:
        service.stop()
    assert "STOPPING=1" in received(notify_socket, "STOPPING=1")


def test_no_heartbeat_when_the_loop_stops_ticking(
    notify_socket: socket.socket, tmp_path: Path
) -> None:
    config = parse_model("timing: {sample_interval_s: 0.1}\n", AgentConfig).model_copy(
        update={"mqtt": MqttSettings(port=1), "state_dir": tmp_path / "a"}
    )
    service = AgentService(config, WallClock(), MockFactory())
    service.start()
    try:
        received(notify_socket, "WATCHDOG=1")
        with service.agent._locked():  # the interlock loop hangs (a deadlock, say)
            notify_socket.settimeout(1.5)
            quiet = []
            try:
                while True:
                    quiet.append(notify_socket.recv(256).decode())
            except TimeoutError:
                pass
            # At most the beats already due before the hang was noticed (5 ticks of grace).
            assert quiet.count("WATCHDOG=1") <= 3, quiet
        notify_socket.settimeout(10)
        received(notify_socket, "WATCHDOG=1")  # back to life: heartbeats again
    finally:
        service.stop()


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog_interval_s() is None
