"""Issue 14, finding 8: an operator's mistake ends in one line saying what to do, and a
non-zero exit; never a traceback, never a false "OK"."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from conftest import MOSQUITTO, _accepting, free_port, wait_until
from pki import Pki, make_pki, other_ca
from roomwatch.cli.main import main
from roomwatch.firmware_config import MqttSettings, TlsSettings
from roomwatch.firmware_config.pins import bcm_of
from roomwatch.transport import MqttLink


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def roomwatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command, in a process of its own (its log lines and tracebacks included)."""
    return subprocess.run(
        [sys.executable, "-m", "roomwatch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"{len(lines)} lines:\n{text}"
    assert "Traceback" not in text
    return lines[0]


# ------------------------------------------------------------------------ ports


def test_demo_on_a_taken_broker_port(taken_port: int, tmp_path: Path) -> None:
    done = roomwatch(
        "demo", "--port", str(taken_port), "--http-port", "0", "--duration", "5",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"port {taken_port}" in line and "MQTT broker" in line and "--port" in line, line


def test_demo_on_a_taken_web_port(taken_port: int, tmp_path: Path) -> None:
    done = roomwatch(
        "demo", "--port", str(free_port()), "--http-port", str(taken_port), "--duration", "5",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Open http" not in done.stdout, "it must not invite anyone to a page nobody serves"
    line = one_line(done.stderr)
    assert f"port {taken_port}" in line and "web app" in line and "--http-port" in line, line


def test_collector_on_a_taken_health_port(taken_port: int, tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(f"http_port: {taken_port}\n")
    done = roomwatch(
        "collector", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'c.db'}",
        "--no-web", "--duration", "5",
    )  # fmt: skip
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"port {taken_port}" in line and "/healthz" in line and "http_port" in line, line


# --------------------------------------------------------------------- databases


@pytest.mark.parametrize(
    "command",
    [
        ["report", "episodes", "--from", "2026-01-01", "--to", "2026-01-31"],
        ["audit", "verify"],
    ],
)
def test_read_only_commands_on_a_database_that_does_not_exist(
    command: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "collector.db"
    result = CliRunner().invoke(main, [*command, "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert "OK" not in line
    assert f"no database at {missing}" in line and "--db" in line, line
    assert not missing.parent.exists(), "a read-only command must not create a database"


@pytest.mark.parametrize(
    "command",
    [["audit", "verify"], ["user", "add", "someone", "--password-stdin"]],
)
def test_a_database_driver_that_is_not_installed(command: list[str]) -> None:
    url = "postgresql+pg8000://roomwatch@localhost/roomwatch"  # pg8000: not installed here
    result = CliRunner().invoke(main, [*command, "--db", url], input="a-long-password\n")
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert "'pg8000'" in line and "roomwatch[postgres]" in line and "postgresql+psycopg" in line


def test_the_collector_with_a_database_driver_that_is_not_installed(tmp_path: Path) -> None:
    done = roomwatch(
        "collector", "--db", "postgresql+pg8000://roomwatch@localhost/roomwatch", "--no-web",
        "--broker", f"mqtt://127.0.0.1:{free_port()}", "--duration", "5",
        "--config", str(_no_health(tmp_path)),
    )  # fmt: skip
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "'pg8000'" in line and "roomwatch[postgres]" in line, line


def _no_health(folder: Path) -> Path:
    config = folder / "collector.yaml"
    config.write_text("http_port: null\n")
    return config


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_listener(tmp_path: Path) -> Iterator[tuple[int, Pki]]:
    """Mosquitto on TLS, its certificate made for 127.0.0.2 (so 127.0.0.1 is a mismatch)."""
    import getpass

    pki = make_pki(tmp_path / "pki", server_ip="127.0.0.2")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\ncafile {pki.ca}\n"
        f"certfile {pki.server_cert}\nkeyfile {pki.server_key}\npersistence false\n"
        f"user {getpass.getuser()}\n"
    )
    with (tmp_path / "broker.log").open("wb") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        assert wait_until(lambda: _accepting(port), timeout=10)
        yield port, pki
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("trust", "said"),
    [
        ("other-ca", "not signed by the CA in mqtt.tls.ca_file"),
        ("right-ca", "is not for '127.0.0.1'"),  # the certificate names 127.0.0.2
    ],
)
def test_tls_failures_are_named_as_such(
    tls_listener: tuple[int, Pki],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    trust: str,
    said: str,
) -> None:
    port, pki = tls_listener
    ca = other_ca(tmp_path / "other") if trust == "other-ca" else pki.ca
    link = MqttLink(MqttSettings(host="127.0.0.1", port=port, tls=TlsSettings(ca_file=ca)), "agent")
    with caplog.at_level(logging.WARNING, logger="roomwatch.transport.client"):
        link.start()
        try:

            def named() -> bool:
                return any(
                    "TLS certificate verify failed" in r.getMessage() for r in caplog.records
                )

            assert wait_until(named, timeout=15), caplog.text
        finally:
            link.stop()
    (line,) = {r.getMessage() for r in caplog.records if "TLS" in r.getMessage()}
    assert said in line, line
    assert not any("unreachable" in r.getMessage() for r in caplog.records), caplog.text


# ------------------------------------------------------------------------- pins


def test_validate_config_refuses_a_pin_the_agent_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "sensors:\n  door_lock: {kind: contact, pin: twenty-two}\n  motion: {kind: pir, pin: 22}\n"
    )
    result = CliRunner().invoke(main, ["validate-config", str(path)])
    assert result.exit_code == 1, result.output
    assert "sensors.door_lock.pin (line 2)" in result.output
    assert "'twenty-two' is not a GPIO pin name" in result.output


def test_the_pin_names_accepted_are_gpiozeros() -> None:
    """The schema's table (firmware_config/pins.py) against gpiozero's own, both ways."""
    factory = MockFactory()  # a 40-pin Pi 3B
    accepted: dict[str, int] = {}
    for header in factory.board_info.headers.values():
        for pin in header.pins.values():
            if "gpio" in pin.interfaces:
                bcm = int(pin.name.removeprefix("GPIO"))
                accepted.update({str(name): bcm for name in pin.names})
    for name, bcm in accepted.items():
        assert bcm_of(name) == bcm, name
    for name in ("twenty-two", "gpio17", "GPIO28", "BOARD1", "J8:2", "BOARD41", "P1:11", "17 "):
        assert name not in accepted, name
        with pytest.raises(ValueError, match="not a GPIO pin name"):
            bcm_of(name)
    with pytest.raises(ValueError, match="0 to 27"):
        bcm_of(28)
