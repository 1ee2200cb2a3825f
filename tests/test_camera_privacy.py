"""Privacy by construction: during a camera scenario on a real Mosquitto, no published
message, log line or file the agent writes holds image data.

How "no image data" is checked, from the specific to the general:

* **Fingerprints.** Frames are pure functions of the scene and the time, so the
  test re-renders every frame the camera saw and takes sixteen 16-byte runs of
  each (from the part of the view outside the privacy mask, where sensor noise
  makes every run unique). None may appear anywhere: raw, as hex, or as the
  numbers of a JSON or numpy array.
* **Shapes.** No message holds a list longer than 32 items or a string longer
  than 300 characters; no text holds a run of 24 or more small integers (an
  array printed or serialised), a long base64 or hex run, or the magic bytes of
  an image or video format.
* **Files.** The agent writes only its outbox database; the calibration's
  reference (written before the scenario) is left as it was.

A self-test shows each check catching a frame smuggled out in that form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from conftest import Broker, Recorder, wait_until
from roomwatch.core.clock import VirtualClock
from roomwatch.core.room import Input
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model
from roomwatch.hardware.camera.build import build_camera, calibrate
from roomwatch.hardware.camera.reference import Mask
from roomwatch.hardware.camera.scenes import Figure, Frame, Scene
from roomwatch.hardware.gpio import drive

pytestmark = pytest.mark.mosquitto

ROOM = """
site: oak
room: calm-2
sensors:
  door_closed: {kind: contact, pin: 27}
  motion:      {kind: pir, pin: 22}
  camera:
    kind: v4l2
    privacy_mask: [[[0.01, 0.09], [0.23, 0.09], [0.23, 0.82], [0.01, 0.82]]]
outputs:
  lock_permit: {pin: 16}
"""

SCENE = Scene(
    seed=41,
    figures=(Figure(enter_at=10.0, posture="sit", leave_at=80.0),),
    covered=((40.0, 55.0),),
    door_open=((5.0, 20.0),),
    passerby=True,
)
RUN_S = 100.0

# --------------------------------------------------------------- the checks

NUMBER_RUN = re.compile(rb"(?:\b\d{1,3}\b[\s,;]+){24,}")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{120,}={0,2}")
HEX_RUN = re.compile(rb"[0-9a-fA-F]{96,}")
MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"\x1aE\xdf\xa3", b"ftyp", b"\x93NUMPY")


class ImageDetector:
    def __init__(self, frames: list[Frame], mask: Mask) -> None:
        rng = random.Random(0)
        self.windows: list[bytes] = []
        rows = np.flatnonzero(mask.visible[:, -40:].all(axis=1))  # rows visible at the right
        for frame in frames:
            for _ in range(16):
                y = int(rng.choice(list(rows)))
                x = rng.randrange(frame.shape[1] - 56, frame.shape[1] - 16)
                self.windows.append(frame[y, x : x + 16].tobytes())

    def problems(self, name: str, blob: bytes) -> list[str]:
        found = []
        lowered = blob.lower()
        for window in self.windows:
            numbers = [str(b).encode() for b in window]
            forms = {
                "raw": window,
                "hex": window.hex().encode(),
                "json numbers": b", ".join(numbers),
                "numpy numbers": b" ".join(numbers),
            }
            for form, needle in forms.items():
                if needle in (lowered if form == "hex" else blob):
                    found.append(f"{name}: a frame's bytes ({form})")
        for what, pattern in (
            ("a run of numbers", NUMBER_RUN),
            ("a base64 run", BASE64_RUN),
            ("a hex run", HEX_RUN),
        ):
            if pattern.search(blob):
                found.append(f"{name}: {what}")
        found += [f"{name}: image magic {m!r}" for m in MAGIC if m in blob]
        return sorted(set(found))


def message_shape_problems(topic: str, payload: bytes) -> list[str]:
    found = []
    data = json.loads(payload)

    def walk(value: object, path: str) -> None:
        if isinstance(value, list):
            if len(value) > 32:
                found.append(f"{topic} {path}: a list of {len(value)}")
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, str) and len(value) > 300:
            found.append(f"{topic} {path}: a string of {len(value)}")

    walk(data, "")
    return found


def test_the_detector_catches_a_frame_in_every_form() -> None:
    frame = SCENE.render(30.0)
    assert frame is not None
    mask = Mask.build(SCENE.mask_polygons(), 320, 240)
    detector = ImageDetector([frame], mask)
    np.set_printoptions(threshold=10**6)
    smuggled = {
        "raw": b"header" + frame.tobytes() + b"trailer",
        "log repr": f"frame: {frame!r}".encode(),
        "json": json.dumps({"frame": frame.tolist()}).encode(),
        "base64": json.dumps({"jpeg": base64.b64encode(frame.tobytes()).decode()}).encode(),
        "hex": frame.tobytes().hex().encode(),
        "png": cv2.imencode(".png", frame)[1].tobytes(),
    }
    for name, blob in smuggled.items():
        assert detector.problems(name, blob), f"{name} went unnoticed"
    assert message_shape_problems("t", json.dumps({"frame": frame[0].tolist()}).encode())
    assert detector.problems("clean", b'{"type": "sensor_fault", "fault": "covered"}') == []


# ------------------------------------------------------------ the scenario


@pytest.fixture
def no_image_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to encode or write a picture fails the test loudly."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("something tried to encode or write an image")

    for name in ("imwrite", "imencode", "VideoWriter", "imwritemulti"):
        monkeypatch.setattr(cv2, name, refuse)
    for name in ("save", "savez", "savez_compressed", "savetxt"):
        monkeypatch.setattr(np, name, refuse)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_nothing_the_agent_publishes_logs_or_writes_holds_image_data(
    mosquitto: Broker,
    tmp_path: Path,
    no_image_writers: None,
    logs: pytest.LogCaptureFixture,
) -> None:
    state = tmp_path / "state"
    config = parse_model(ROOM, AgentConfig).model_copy(
        update={
            "mqtt": MqttSettings(host=mosquitto.host, port=mosquitto.port, keepalive_s=5),
            "state_dir": state,
        }
    )
    camera_config = config.sensors.camera
    assert camera_config is not None
    assert camera_config.privacy_mask == SCENE.mask_polygons()
    ticks = [0.0]

    def sleep(seconds: float) -> None:
        ticks[0] += seconds

    reference_path, _ = calibrate(
        camera_config,
        state,
        monotonic=lambda: ticks[0],
        sleep=sleep,
        scene=Scene(seed=SCENE.seed, noise=SCENE.noise),
    )
    reference_hash = hashlib.sha256(reference_path.read_bytes()).hexdigest()
    before = set(tmp_path.rglob("*"))

    clock = VirtualClock()
    start = clock.now().timestamp()
    camera = build_camera(
        camera_config, state, monotonic=lambda: clock.now().timestamp(), scene=SCENE
    )
    recorder = Recorder(mosquitto, "#")
    service = AgentService(config, clock, MockFactory(), schedule=False, camera=camera)
    service.start()
    try:
        assert service.link.subscribed.wait(10)
        door = service.devices.inputs[Input.DOOR_CLOSED]
        seen: list[float] = []
        t = 0.0
        while t < RUN_S:
            drive(door, not 5 <= t < 20)
            service.agent.sample_camera()
            seen.append(clock.now().timestamp() - start)
            if t == int(t):
                service.agent.tick()
            clock.advance(0.5)
            t += 0.5
        last = service.outbox.last_seq
        assert wait_until(
            lambda: any(
                b'"seq":%d' % last in p or b'"seq": %d' % last in p for _, p in recorder.messages
            ),
            timeout=20,
        ), "every message reached the broker"
    finally:
        service.stop()
        recorder.close()

    # The scenario did what it should: presence, a covered-lens fault, and recovery.
    events = [json.loads(p) for topic, p in recorder.messages if topic.endswith("/event")]
    types = [e["type"] for e in events]
    assert "sensor_fault" in types and "sensor_ok" in types
    assert any(
        json.loads(p).get("event") == "started"
        for tp, p in recorder.messages
        if tp.endswith("/episode")
    )

    mask = Mask.build(SCENE.mask_polygons(), 320, 240)
    frames = [f for f in (SCENE.render(s) for s in seen) if f is not None]
    assert len(frames) > 150
    detector = ImageDetector(frames, mask)
    problems: list[str] = []
    for topic, payload in recorder.messages:
        problems += detector.problems(f"message on {topic}", payload)
        problems += message_shape_problems(topic, payload)
    for record in logs.records:
        problems += detector.problems(f"log {record.name}", logs.handler.format(record).encode())
    written = sorted(p for p in set(tmp_path.rglob("*")) - before if p.is_file())
    mine = [p for p in written if p.is_relative_to(state)]
    assert {p.name for p in mine} <= {"agent.db", "agent.db-wal", "agent.db-shm"}, mine
    everything = [p for p in tmp_path.rglob("*") if p.is_file() and p != reference_path]
    for path in everything:  # the outbox, the broker's log: all of it
        problems += detector.problems(str(path.relative_to(tmp_path)), path.read_bytes())
    assert problems == []
    assert hashlib.sha256(reference_path.read_bytes()).hexdigest() == reference_hash
    assert len(logs.records) > 10 and len(recorder.messages) > 20, "there was something to check"
