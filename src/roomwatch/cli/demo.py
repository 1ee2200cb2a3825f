"""``roomwatch demo`` (placeholder until the simulator lands): one mock room, scripted.

Runs the real programs: an embedded broker, the collector on SQLite, and an
agent on mock pins whose sensors a script drives in a loop, so a newcomer
sees the interlock and an alert's life in the log.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

from roomwatch.collector.config import CollectorConfig
from roomwatch.core.clock import WallClock
from roomwatch.core.room import Input
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.hardware.gpio import drive

log = logging.getLogger("roomwatch.demo")

DEMO_ROOM = """
site: demo
room: room-101
profile: us-mi
student_band: elementary
sensors:
  door_lock:   {kind: contact, pin: 17}
  door_closed: {kind: contact, pin: 27}
  motion:      {kind: pir, pin: 22}
  staff:       {kind: mat, pin: 23}
outputs:
  lock_permit: {pin: 16}
  sounder:     {pin: 20}
timing:
  occupancy_hold_s: 5
  empty_debounce_s: 5
"""

#: (seconds to wait first, what happens, input, value)
SCRIPT: list[tuple[float, str, Input, bool]] = [
    (3, "a student walks in with a staff member at the window", Input.MOTION, True),
    (0, "", Input.STAFF, True),
    (2, "the door closes", Input.DOOR_CLOSED, True),
    (
        3,
        "the student sits still (the PIR goes quiet; the closed door keeps the room occupied)",
        Input.MOTION,
        False,
    ),
    (4, "someone throws the bolt: the agent releases and sounds at once", Input.DOOR_LOCK, True),
    (4, "the bolt is drawn back", Input.DOOR_LOCK, False),
    (3, "the door opens and the student leaves", Input.DOOR_CLOSED, False),
    (0, "", Input.STAFF, False),
]


class DemoRoom:
    def __init__(self, collector_config: CollectorConfig) -> None:
        from roomwatch.hardware.gpio import mock_factory

        config = parse_model(DEMO_ROOM, AgentConfig, "demo room")
        config = config.model_copy(
            update={
                "mqtt": collector_config.mqtt,
                "state_dir": Path(tempfile.mkdtemp(prefix="roomwatch-demo-")),
            }
        )
        self.service = AgentService(config, WallClock(), mock_factory())
        self._thread = threading.Thread(target=self._play, name="demo-script", daemon=True)

    def start(self) -> None:
        self.service.start()
        self._thread.start()

    def stop(self) -> None:
        self.service.stop_event.set()
        self._thread.join(timeout=5)
        self.service.stop()

    def _play(self) -> None:
        stop = self.service.stop_event
        inputs = self.service.devices.inputs
        while not stop.is_set():
            for wait, what, name, value in SCRIPT:
                if stop.wait(wait):
                    return
                if what:
                    log.info("demo/room-101: %s", what)
                drive(inputs[name], value)
            if stop.wait(12):
                return
