"""The camera as one more occupancy input: the pure fusion rules, then the agent on a
virtual clock with a synthetic room (mock pins, real outbox, real estimator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from roomwatch.core import room
from roomwatch.core.clock import VirtualClock
from roomwatch.core.room import Input
from roomwatch.edge_agent.agent import RoomAgent
from roomwatch.edge_agent.devices import build_devices
from roomwatch.edge_agent.outbox import Outbox
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.hardware.camera.build import build_camera, calibrate
from roomwatch.hardware.camera.scenes import Figure, Scene
from roomwatch.hardware.gpio import drive

# ------------------------------------------------------------- pure fusion

FITTED = frozenset({Input.DOOR_LOCK, Input.DOOR_CLOSED, Input.MOTION, Input.CAMERA})
SETTINGS = room.RoomSettings("s", "r", FITTED, occupancy_hold_s=30, empty_debounce_s=60)


class Machine:
    def __init__(self, settings: room.RoomSettings = SETTINGS) -> None:
        self.clock = VirtualClock()
        self.settings = settings
        self.state = room.initial_state(self.clock.now())

    def set(self, name: Input, value: bool | None) -> None:
        self.state, _ = room.step(
            self.state, room.InputChanged(name, value), self.clock.now(), self.settings
        )

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.state, _ = room.step(self.state, room.Tick(), self.clock.now(), self.settings)


def empty_room(settings: room.RoomSettings = SETTINGS) -> Machine:
    m = Machine(settings)
    for name in (Input.DOOR_LOCK, Input.MOTION, Input.DOOR_CLOSED):
        m.set(name, False)
    for name in (Input.CAMERA, Input.PRESENCE):
        if name in settings.fitted:
            m.set(name, False)
    m.wait(31)
    return m


def test_a_blind_camera_is_unknown_and_withholds_the_permit() -> None:
    m = empty_room()
    assert m.state.occupied is False and m.state.permit is True
    m.set(Input.CAMERA, None)
    assert m.state.occupied is None
    assert m.state.permit is False, "unknown counts as occupied"
    m.wait(3600)
    assert m.state.permit is False and m.state.episode is None, "no episode invented"


def test_the_camera_sees_a_still_child_the_pir_has_forgotten() -> None:
    m = empty_room()
    m.set(Input.MOTION, True)
    m.set(Input.CAMERA, True)
    m.set(Input.MOTION, False)
    m.wait(600)
    assert m.state.occupied is True and m.state.permit is False
    m.set(Input.CAMERA, False)
    m.wait(31)
    assert m.state.occupied is False


def test_camera_presence_behind_a_closed_door_seals_the_room() -> None:
    m = empty_room()
    m.set(Input.DOOR_CLOSED, True)
    m.set(Input.CAMERA, True)
    assert m.state.sealed
    m.set(Input.CAMERA, None)  # covered: still sealed, still occupied
    m.wait(120)
    assert m.state.occupied is True
    m.set(Input.CAMERA, False)  # seen empty again: the seal is lifted
    m.wait(31)
    assert m.state.occupied is False


def test_a_sealed_room_opens_only_when_every_presence_sensor_says_empty() -> None:
    both = room.RoomSettings(
        "s", "r", FITTED | {Input.PRESENCE}, occupancy_hold_s=30, empty_debounce_s=60
    )
    m = empty_room(both)
    m.set(Input.DOOR_CLOSED, True)
    m.set(Input.PRESENCE, True)
    m.set(Input.CAMERA, True)
    m.set(Input.PRESENCE, False)  # the radar loses the child; the camera still sees them
    m.wait(120)
    assert m.state.sealed and m.state.occupied is True
    m.set(Input.CAMERA, False)
    assert not m.state.sealed
    m.wait(31)
    assert m.state.occupied is False
    m.set(Input.DOOR_CLOSED, False)
    m.set(Input.DOOR_CLOSED, True)
    m.set(Input.CAMERA, True)
    m.set(Input.CAMERA, False)  # the camera says empty, the radar is blind: not released
    m.set(Input.PRESENCE, None)
    m.wait(120)
    assert m.state.occupied is not False


# -------------------------------------------------------------- the agent

ROOM = """
site: oak
room: calm-2
sensors:
  door_lock:   {kind: contact, pin: 17}
  door_closed: {kind: contact, pin: 27}
  motion:      {kind: pir, pin: 22}
  camera:
    kind: picamera2
    privacy_mask: [[[0.01, 0.09], [0.23, 0.09], [0.23, 0.82], [0.01, 0.82]]]
outputs:
  lock_permit: {pin: 16}
timing: {telemetry_interval_s: 10, occupancy_hold_s: 30, empty_debounce_s: 60}
"""


class Rig:
    """An agent whose camera watches ``scene`` (time 0 = the first frame)."""

    def __init__(self, folder: Path, scene: Scene) -> None:
        self.config = parse_model(ROOM, AgentConfig).model_copy(update={"state_dir": folder})
        camera_config = self.config.sensors.camera
        assert camera_config is not None
        assert camera_config.privacy_mask == scene.mask_polygons()
        self.clock = VirtualClock()
        ticks = [0.0]

        def sleep(seconds: float) -> None:
            ticks[0] += seconds

        calibrate(
            camera_config,
            folder,
            monotonic=lambda: ticks[0],
            sleep=sleep,
            scene=Scene(seed=scene.seed, noise=scene.noise),
        )
        self.factory = MockFactory()
        self.devices = build_devices(self.config, self.factory)
        self.outbox = Outbox(folder / "agent.db")
        self.camera = build_camera(camera_config, folder, monotonic=self.seconds, scene=scene)
        self.agent = RoomAgent(
            self.config, self.devices, self.outbox, self.clock, camera=self.camera
        )
        self.agent.attach()
        self.t = 0.0

    def seconds(self) -> float:
        return self.clock.now().timestamp()

    def set(self, name: Input, value: bool) -> None:
        drive(self.devices.inputs[name], value)

    def run_until(self, t: float) -> Iterator[float]:
        """Two frames a second, a tick a second; yields the scene time after each frame."""
        while self.t < t:
            self.agent.sample_camera()
            if self.t == int(self.t):
                self.agent.tick()
            yield self.t
            self.clock.advance(0.5)
            self.t += 0.5

    def go(self, t: float) -> None:
        for _ in self.run_until(t):
            pass

    def events(self, type_: str) -> list[dict[str, Any]]:
        rows = self.outbox.after(-1, limit=100_000)
        messages = [json.loads(r.payload) for r in rows if r.kind == "event"]
        return [m for m in messages if m["type"] == type_]

    def close(self) -> None:
        self.devices.close()
        self.camera.close()
        self.outbox.close()


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for r in made:
        r.close()


def test_a_still_child_by_an_open_door_keeps_the_permit_withdrawn(
    tmp_path: Path, rigs: list[Rig]
) -> None:
    child = Figure(enter_at=20.0, walk_s=6.0, posture="curl", size=0.7, spot=(0.75, 0.9))
    rig = Rig(tmp_path, Scene(seed=31, figures=(child,), covered=((300.0, 330.0),)))
    rigs.append(rig)
    rig.set(Input.DOOR_CLOSED, False)
    rig.go(20)
    assert rig.agent.state.occupied is False and rig.agent.state.permit is True
    rig.set(Input.MOTION, True)  # the PIR sees the child come in ...
    for t in rig.run_until(300):
        if t == 26:
            rig.set(Input.MOTION, False)  # ... and then nothing, for minutes
        if t >= 21:
            assert rig.agent.state.occupied is True, f"occupied at {t} s"
            assert rig.agent.state.permit is False
    assert rig.events("sensor_fault") == []
    for t in rig.run_until(330):  # a hand over the lens: unknown, still no permit
        if t >= 305:
            assert rig.agent.state.occupied is not False
            assert rig.agent.state.permit is False
    faults = rig.events("sensor_fault")
    assert len(faults) == 1 and faults[0]["sensor"] == "camera", "reported once"
    assert "covered" in faults[0]["fault"]
    rig.go(340)
    assert [e["sensor"] for e in rig.events("sensor_ok")] == ["camera"]
    assert rig.agent.state.occupied is True


def test_an_empty_room_with_dimming_lights_and_a_door_opening_keeps_its_permit(
    tmp_path: Path, rigs: list[Rig]
) -> None:
    scene = Scene(seed=32, lights=((0.0, 1.0), (30.0, 1.0), (40.0, 0.5)), door_open=((60, 80),))
    rig = Rig(tmp_path, scene)
    rigs.append(rig)
    rig.set(Input.DOOR_CLOSED, True)
    rig.go(35)
    assert rig.agent.state.permit is True
    for t in rig.run_until(100):
        if t == 60:
            rig.set(Input.DOOR_CLOSED, False)
        if t == 80:
            rig.set(Input.DOOR_CLOSED, True)
        assert rig.agent.state.occupied is False, f"empty at {t} s"
    assert rig.agent.state.episode is None
    assert rig.agent.camera_reading is not None
    assert rig.agent.camera_reading.luminance is not None


def test_a_covered_lens_in_an_empty_room_withdraws_the_permit_within_5_s(
    tmp_path: Path, rigs: list[Rig]
) -> None:
    rig = Rig(tmp_path, Scene(seed=33, covered=((40.0, 60.0),)))
    rigs.append(rig)
    rig.set(Input.DOOR_CLOSED, False)
    rig.go(40)
    assert rig.agent.state.permit is True
    withdrawn_at = next(t for t in rig.run_until(60) if rig.agent.state.permit is False)
    assert withdrawn_at - 40 <= 5.0
    assert len(rig.events("sensor_fault")) == 1
    rig.go(80)
    assert rig.agent.state.permit is True, "seen empty again after the lens is uncovered"
