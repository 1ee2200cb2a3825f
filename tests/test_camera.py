"""Camera occupancy on synthetic scenes: still figures, lights, doors, a covered lens.

Frames carry their own timestamps, so ten minutes of a still child take a few
seconds to judge and every time-based assertion is on the frames' clock.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roomwatch.firmware_config import AgentConfig, ConfigError, parse_model
from roomwatch.firmware_config.schema import CameraSensor
from roomwatch.hardware.camera import CameraReading, Sighting, UnavailableCamera
from roomwatch.hardware.camera.build import build_camera, calibrate
from roomwatch.hardware.camera.estimator import PresenceEstimator
from roomwatch.hardware.camera.evaluation import make_clips, run_clip, score
from roomwatch.hardware.camera.live import Camera
from roomwatch.hardware.camera.reference import Mask, Reference, build_reference
from roomwatch.hardware.camera.scenes import DOORWAY, Figure, Scene
from roomwatch.hardware.camera.source import FakeSource

FPS = 2.0


def calibrated(scene: Scene) -> tuple[Reference, Mask]:
    """The installer's step: the empty room, at full light, for 5 s."""
    mask = Mask.build(scene.mask_polygons(), scene.width, scene.height)
    empty = Scene(seed=scene.seed, noise=scene.noise)
    frames = [empty.render(-100 + i / FPS) for i in range(10)]
    return build_reference([f for f in frames if f is not None], mask), mask


def play(
    scene: Scene, seconds: float, estimator: PresenceEstimator | None = None
) -> list[tuple[float, CameraReading]]:
    if estimator is None:
        estimator = PresenceEstimator(*calibrated(scene))
    out = []
    for i in range(round(seconds * FPS)):
        t = i / FPS
        frame = scene.render(t)
        reading = (
            estimator.observe(frame, t) if frame is not None else estimator.no_frame(t, "gone")
        )
        out.append((t, reading))
    return out


def sightings(readings: list[tuple[float, CameraReading]]) -> set[Sighting]:
    return {r.sighting for _, r in readings}


# ------------------------------------------------------------------ presence


def test_a_figure_who_walks_in_and_sits_still_for_ten_minutes_is_present_throughout() -> None:
    figure = Figure(enter_at=8.0, walk_s=6.0, posture="sit", spot=(0.7, 0.8))
    scene = Scene(seed=11, figures=(figure,))
    readings = play(scene, 8 + 6 + 600 + 5)
    before = {r.sighting for t, r in readings if 5.0 <= t < 8.0}
    assert before == {Sighting.ABSENT}, "the empty room was seen as empty"
    first = next(t for t, r in readings if r.sighting is Sighting.PRESENT)
    assert 8.0 <= first <= 8.0 + 2.0, "seen within 2 s of stepping out of the doorway"
    after = [r for t, r in readings if t >= first]
    assert all(r.sighting is Sighting.PRESENT for r in after), "present every frame, still or not"
    still = [r for t, r in readings if t >= 8 + 6 + 60]
    assert all(r.motion is not None and r.motion < 0.004 for r in still), "no motion seen"
    assert min(r.confidence for r in still) >= 0.8


def test_lights_dimming_by_half_in_an_empty_room_give_no_presence() -> None:
    for lights in (((0.0, 1.0), (10.0, 1.0), (30.0, 0.5)), ((0.0, 1.0), (10.0, 1.0), (10.5, 0.5))):
        readings = play(Scene(seed=12, lights=lights), 60)
        assert Sighting.PRESENT not in sightings(readings), lights
        assert readings[-1][1].sighting is Sighting.ABSENT
        lum = [r.luminance for _, r in readings]
        assert lum[-1] is not None and lum[0] is not None
        assert 0.4 < lum[-1] / lum[0] < 0.6, "the light reading follows the lights"


def test_a_door_opening_onto_a_busy_corridor_gives_no_presence() -> None:
    scene = Scene(seed=13, door_open=((8.0, 40.0),), passerby=True)
    readings = play(scene, 50)
    assert Sighting.PRESENT not in sightings(readings)
    assert readings[-1][1].sighting is Sighting.ABSENT


def test_camera_noise_alone_gives_no_presence() -> None:
    readings = play(Scene(seed=14, noise=9.0), 40)
    assert Sighting.PRESENT not in sightings(readings)


def test_someone_who_leaves_is_absent_after_the_hold() -> None:
    figure = Figure(enter_at=2.0, walk_s=5.0, posture="stand", leave_at=15.0)
    readings = play(Scene(seed=15, figures=(figure,)), 40)
    gone = 15.0 + 5.0
    assert all(r.sighting is Sighting.PRESENT for t, r in readings if 4 <= t < gone)
    assert all(r.sighting is Sighting.ABSENT for t, r in readings if t >= gone + 5.0 + 0.5)


def test_a_sample_of_labelled_clips_has_precision_and_recall_of_at_least_098() -> None:
    outcomes = [run_clip(clip) for clip in make_clips(20, seed=7)]
    result = score(outcomes)
    assert result["occupied_clips"] not in (0, 20)
    assert float(result["precision"]) >= 0.98, result  # type: ignore[arg-type]
    assert float(result["recall"]) >= 0.98, result  # type: ignore[arg-type]


# --------------------------------------------------------------- blindness


def test_a_covered_lens_is_unknown_within_5_s_with_a_fault_then_recovers() -> None:
    scene = Scene(seed=16, covered=((20.0, 40.0),))
    readings = play(scene, 60)
    unknown_at = next(t for t, r in readings if t >= 20 and r.sighting is Sighting.UNKNOWN)
    assert unknown_at - 20.0 <= 5.0
    during = [r for t, r in readings if unknown_at <= t < 40]
    assert all(r.sighting is Sighting.UNKNOWN and r.fault for r in during)
    assert "covered" in (during[0].fault or "")
    assert readings[-1][1].sighting is Sighting.ABSENT and readings[-1][1].fault is None


def test_a_covered_lens_while_someone_is_inside_is_unknown_never_absent() -> None:
    figure = Figure(enter_at=0.0, posture="sit")
    scene = Scene(seed=17, figures=(figure,), covered=((30.0, 50.0),))
    readings = play(scene, 60)
    assert all(r.sighting is not Sighting.ABSENT for t, r in readings if t >= 8)


def test_lights_off_are_unknown_too_dark() -> None:
    scene = Scene(seed=18, lights=((0.0, 1.0), (10.0, 1.0), (10.5, 0.02)))
    readings = play(scene, 20)
    last = readings[-1][1]
    assert last.sighting is Sighting.UNKNOWN
    assert last.fault is not None and "dark" in last.fault


def test_a_frozen_image_is_unknown() -> None:
    scene = Scene(seed=19)
    estimator = PresenceEstimator(*calibrated(scene))
    frame = scene.render(0.0)
    assert frame is not None
    readings = [estimator.observe(frame.copy(), i / FPS) for i in range(20)]
    assert readings[-1].sighting is Sighting.UNKNOWN
    assert "frozen" in (readings[-1].fault or "")


def test_a_camera_that_stops_giving_frames_is_unknown_within_5_s() -> None:
    scene = Scene(seed=20, failed=((10.0, 100.0),))
    now = [0.0]
    mask = Mask.build(scene.mask_polygons(), 320, 240)
    camera = Camera(
        lambda: FakeSource(scene, lambda: now[0], start=0.0),
        PresenceEstimator(calibrated(scene)[0], mask),
        1 / FPS,
        lambda: now[0],
    )
    readings = []
    while now[0] < 20:
        readings.append((now[0], camera.read()))
        now[0] += 1 / FPS
    unknown_at = next(t for t, r in readings if r.sighting is Sighting.UNKNOWN and t >= 10)
    assert unknown_at - 10.0 <= 5.0
    assert "no frame" in (readings[-1][1].fault or "")


def test_an_uncalibrated_camera_is_unknown_and_says_how_to_calibrate(tmp_path: Path) -> None:
    config = CameraSensor(kind="v4l2")
    now = [0.0]
    camera = build_camera(config, tmp_path, monotonic=lambda: now[0], scene=Scene(seed=1))
    reading = camera.read()
    assert reading.sighting is Sighting.UNKNOWN
    assert reading.fault is not None and "--calibrate-camera" in reading.fault
    camera.close()


def test_a_missing_camera_device_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    config = CameraSensor(kind="file", path=tmp_path / "missing.mp4", obscured_after_s=0.5)
    now = [0.0]
    camera = build_camera(config, tmp_path, monotonic=lambda: now[0])
    readings = []
    for _ in range(4):
        readings.append(camera.read())
        now[0] += 0.5
    assert readings[-1].sighting is Sighting.UNKNOWN
    assert "no such video file" in (readings[-1].fault or "")


# ---------------------------------------------------------- privacy mask


def test_masked_pixels_are_blanked_before_anything_looks_at_them() -> None:
    scene = Scene(seed=21, door_open=((0.0, 10.0),), passerby=True)
    mask = Mask.build(scene.mask_polygons(), 320, 240)
    frame = scene.render(1.0)
    assert frame is not None
    blanked = mask.blank(frame)
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(DOORWAY, (320, 240, 320, 240), strict=True))
    assert not blanked[y0:y1, x0:x1].any(), "the doorway is all zeros"
    assert blanked[5:, 200:].any()


def test_someone_seen_only_through_the_masked_doorway_is_not_present() -> None:
    scene = Scene(seed=22, door_open=((0.0, 60.0),), passerby=True)
    assert Sighting.PRESENT not in sightings(play(scene, 30))


def test_a_mask_changed_after_calibration_asks_for_a_new_calibration() -> None:
    scene = Scene(seed=23)
    reference, _mask = calibrated(scene)
    other = Mask.build([[(0.5, 0.0), (1.0, 0.0), (1.0, 0.3)]], 320, 240)
    frame = scene.render(0.0)
    assert frame is not None
    reading = PresenceEstimator(reference, other).observe(frame, 0.0)
    assert reading.sighting is Sighting.UNKNOWN
    assert "privacy mask changed" in (reading.fault or "")


# ------------------------------------------------------------- reference


def test_the_reference_is_a_small_grid_of_numbers_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    scene = Scene(seed=24)
    reference, mask = calibrated(scene)
    path = tmp_path / "state" / "camera-reference.json"
    reference.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    numbers = [v for key in ("luminance", "texture") for row in data[key] for v in row]
    assert len(numbers) == 2 * 32 * 24, "two numbers per 10x10 cell, no pixels"
    assert path.stat().st_size < 16_000
    again = Reference.load(path)
    assert again.check(320, 240, mask) is None
    assert np.allclose(again.luminance, reference.luminance, atol=0.06)


def test_calibration_refuses_a_room_where_something_moves() -> None:
    scene = Scene(seed=25, figures=(Figure(enter_at=0.0, walk_s=10.0, posture="stand"),))
    mask = Mask.build(scene.mask_polygons(), 320, 240)
    frames = [scene.render(i / FPS) for i in range(10)]
    with pytest.raises(ValueError, match="moved during calibration"):
        build_reference([f for f in frames if f is not None], mask)


def test_calibration_refuses_a_dark_room() -> None:
    scene = Scene(seed=26, lights=((0.0, 0.05),))
    mask = Mask.build([], 320, 240)
    frames = [scene.render(i / FPS) for i in range(5)]
    with pytest.raises(ValueError, match="too dark"):
        build_reference([f for f in frames if f is not None], mask)


def test_calibrate_writes_the_reference_where_the_camera_reads_it(tmp_path: Path) -> None:
    scene = Scene(seed=27)
    config = CameraSensor(kind="picamera2", privacy_mask=scene.mask_polygons())
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    path, reference = calibrate(
        config, tmp_path, seconds=5, monotonic=lambda: now[0], sleep=sleep, scene=scene
    )
    assert path == tmp_path / "camera-reference.json"
    assert reference.frames == 10
    camera = build_camera(config, tmp_path, monotonic=lambda: now[0], scene=scene)
    readings = []
    for _ in range(14):
        readings.append(camera.read())
        sleep(0.5)
    assert readings[-1].sighting is Sighting.ABSENT
    assert readings[-1].fault is None


# ------------------------------------------------------------ OpenCV missing


def test_a_configured_camera_without_opencv_is_a_clear_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    camera = build_camera(CameraSensor(kind="v4l2"), tmp_path)
    assert isinstance(camera, UnavailableCamera)
    reading = camera.read()
    assert reading.sighting is Sighting.UNKNOWN
    assert reading.fault is not None and "roomwatch[camera]" in reading.fault


def test_the_agent_runs_without_opencv_when_no_camera_is_configured(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["cv2"] = None  # as if OpenCV were not installed
from gpiozero.pins.mock import MockFactory
from roomwatch.cli.main import main
from roomwatch.core.clock import VirtualClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig
config = AgentConfig(state_dir={str(tmp_path)!r})
service = AgentService(config, VirtualClock(), MockFactory(), schedule=False)
service.agent.attach()
service.agent.tick()
service.outbox.close()
print("ran", service.agent.camera)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran None"


# ------------------------------------------------------------------ config


def test_camera_config_errors_name_the_key_and_line() -> None:
    text = (
        "sensors:\n"
        "  camera:\n"
        "    kind: v4l2\n"
        "    device: video0\n"
        "    width: 333\n"
        "    privacy_mask:\n"
        "      - [[0, 0], [1, 0]]\n"
        "    fps: 30\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_model(text, AgentConfig)
    assert [str(p) for p in info.value.problems] == [
        "sensors.camera.device (line 4): a V4L2 device is a path under /dev/ "
        "(e.g. /dev/video0) or an index",
        "sensors.camera.width (line 5): must be a multiple of 10 "
        "(the analysis works in 10-pixel cells)",
        "sensors.camera.privacy_mask (line 6): polygon 1 needs at least 3 points, has 2",
        "sensors.camera.fps (line 8): Input should be less than or equal to 10",
    ]


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("{kind: webcam}", "Input should be 'picamera2', 'v4l2' or 'file'"),
        ("{kind: file}", "kind: file needs path"),
        ("{kind: picamera2, device: 0}", "device is only for kind: v4l2"),
        ("{kind: v4l2, privacy_mask: [[[0, 0], [1.5, 0], [1, 1]]]}", "less than or equal to 1"),
        ("{kind: v4l2, privacy_mask: [[[0, 0], [0.5, 0.5], [1, 1]]]}", "encloses no area"),
        ("{kind: v4l2, obscured_after_s: 10}", "less than or equal to 5"),
        ("{kind: v4l2, colour: true}", "unknown key"),
    ],
)
def test_bad_camera_settings_are_explained(yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(f"sensors:\n  camera: {yaml}\n", AgentConfig)
    assert message in str(info.value)


# --------------------------------------------------------------------- CLI


def test_calibrate_camera_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from roomwatch.cli.main import main

    config = tmp_path / "room.yaml"
    config.write_text("sensors:\n  camera: {kind: v4l2}\n")
    runner = CliRunner()
    args = ["agent", "--config", str(config), "--state-dir", str(tmp_path / "s")]
    done = runner.invoke(main, [*args, "--mock", "--calibrate-camera"])
    assert done.exit_code == 0, done.output
    assert "768 cells x 2 numbers" in done.output
    assert (tmp_path / "s" / "camera-reference.json").is_file()
    config.write_text("site: x\n")
    done = runner.invoke(main, [*args, "--calibrate-camera"])
    assert done.exit_code == 1 and "no camera is configured" in done.output


def test_the_commented_camera_example_is_valid_once_uncommented() -> None:
    from importlib import resources

    text = (
        resources.files("roomwatch.firmware_config") / "examples" / "room-full.yaml"
    ).read_text()
    assert "  # camera:" in text
    uncommented = re.sub(
        r"^  # (camera:|  kind|  fps|  privacy_mask|    - )",
        lambda m: "  " + m.group(1),
        text,
        flags=re.MULTILINE,
    )
    camera = parse_model(uncommented, AgentConfig).sensors.camera
    assert camera is not None and camera.kind == "picamera2" and len(camera.privacy_mask) == 1
