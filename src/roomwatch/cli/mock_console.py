"""Drive a ``--mock`` agent's sensors from standard input, one command per line.

    motion on | motion off | door_closed on | door_lock on | staff off | button
    temperature_c 24.5 | lux 80 | co2_ppm 1400 | presence on | presence off | presence none

Names are the configured sensors (``door_lock``, ``door_closed``, ``motion``,
``staff``); ``button`` presses the staff button; the quantities set the fake
chips' readings (``presence none`` silences the mmWave module). For trying an
agent on a laptop, and for tests that must kill a real agent process.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

from roomwatch.core.room import Input
from roomwatch.edge_agent.devices import RoomDevices
from roomwatch.hardware.gpio import drive
from roomwatch.hardware.mock_environment import MockEnvironment

log = logging.getLogger(__name__)

_STATES = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}


QUANTITIES = ("temperature_c", "lux", "co2_ppm")


def apply(devices: RoomDevices, line: str, environment: MockEnvironment | None = None) -> str:
    """Carry out one command; return what happened (or why not)."""
    words = line.split()
    if not words:
        return ""
    if environment is not None and len(words) == 2 and words[0] in (*QUANTITIES, "presence"):
        return _set_quantity(environment, words[0], words[1])
    if words == ["button"]:
        if devices.staff_button is None:
            return "error: no staff_button is configured"
        drive(devices.staff_button, True)
        drive(devices.staff_button, False)
        return "ok: button pressed"
    if len(words) != 2 or words[1].lower() not in _STATES:
        return f"error: expected '<sensor> on|off' or 'button', got {line.strip()!r}"
    try:
        name = Input(words[0])
    except ValueError:
        return f"error: unknown sensor {words[0]!r}; one of {', '.join(i.value for i in Input)}"
    device = devices.inputs.get(name)
    if device is None:
        return f"error: sensor {name.value} is not configured"
    drive(device, _STATES[words[1].lower()])
    return f"ok: {name.value} {words[1].lower()}"


def _set_quantity(environment: MockEnvironment, name: str, text: str) -> str:
    value: float | bool | None
    if name == "presence":
        if text.lower() not in (*_STATES, "none"):
            return "error: presence on|off|none"
        value = None if text.lower() == "none" else _STATES[text.lower()]
        environment.set("present", value)
    else:
        try:
            value = float(text)
        except ValueError:
            return f"error: {name} needs a number, got {text!r}"
        try:
            environment.set(name, value)
        except ValueError as exc:
            return f"error: {exc}"
    return f"ok: {name} {text}"


def start(
    devices: RoomDevices,
    environment: MockEnvironment | None = None,
    stream: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> threading.Thread:
    def read() -> None:
        for line in stream:
            try:
                answer = apply(devices, line, environment)
            except Exception as exc:  # noqa: BLE001 - the console must never take the agent down
                answer = f"error: {exc}"
            if answer:
                print(answer, file=out, flush=True)

    thread = threading.Thread(target=read, name="mock-console", daemon=True)
    thread.start()
    return thread
