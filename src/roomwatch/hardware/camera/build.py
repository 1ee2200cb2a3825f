"""Build the configured camera, and calibrate it: the one place that imports OpenCV on demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from roomwatch.firmware_config.schema import CameraSensor
from roomwatch.hardware.camera.reading import CameraInput, UnavailableCamera

if TYPE_CHECKING:
    from roomwatch.hardware.camera.reference import Reference
    from roomwatch.hardware.camera.scenes import Scene
    from roomwatch.hardware.camera.source import FrameSource

NO_OPENCV = (
    "OpenCV is not installed: install it with pip install 'roomwatch[camera]' "
    "(or remove sensors.camera from the configuration)"
)
REFERENCE_NAME = "camera-reference.json"
CALIBRATION_S = 10.0


def opencv_missing() -> str | None:
    """Why the camera cannot run here (OpenCV missing), or None."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return NO_OPENCV
    return None


def reference_path(config: CameraSensor, state_dir: Path) -> Path:
    return config.reference_file or state_dir / REFERENCE_NAME


def mock_scene(config: CameraSensor) -> Scene:
    """The empty synthetic room ``--mock`` shows."""
    from roomwatch.hardware.camera.scenes import Scene

    return Scene(seed=0, width=config.width, height=config.height)


def open_source(
    config: CameraSensor, monotonic: Callable[[], float], scene: Scene | None = None
) -> FrameSource:
    """The configured frame source (or the synthetic ``scene``); raises CameraError."""
    from roomwatch.hardware.camera import source

    if scene is not None:
        return source.FakeSource(scene, monotonic)
    if config.kind == "picamera2":
        return source.PicameraSource(config.width, config.height, monotonic=monotonic)
    if config.kind == "file":
        assert config.path is not None
        return source.OpenCvSource(
            str(config.path), config.width, config.height, is_file=True, monotonic=monotonic
        )
    device = "/dev/video0" if config.device is None else config.device
    return source.OpenCvSource(device, config.width, config.height, monotonic=monotonic)


def build_camera(
    config: CameraSensor,
    state_dir: Path,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    scene: Scene | None = None,
) -> CameraInput:
    """The camera input; never raises (a missing OpenCV, camera or reference is a fault)."""
    missing = opencv_missing()
    if missing is not None:
        return UnavailableCamera(missing, 1 / config.fps)
    from roomwatch.hardware.camera.estimator import PresenceEstimator
    from roomwatch.hardware.camera.live import Camera
    from roomwatch.hardware.camera.reference import Mask, Reference, ReferenceError

    mask = Mask.build(config.privacy_mask, config.width, config.height)
    reference: Reference | None = None
    problem = None
    try:
        reference = Reference.load(reference_path(config, state_dir))
    except ReferenceError as exc:
        problem = str(exc)
    estimator = PresenceEstimator(
        reference,
        mask,
        absent_after_s=config.absent_after_s,
        obscured_after_s=config.obscured_after_s,
        people_detector=config.people_detector,
        reference_problem=problem,
    )
    return Camera(
        lambda: open_source(config, monotonic, scene), estimator, 1 / config.fps, monotonic
    )


def calibrate(
    config: CameraSensor,
    state_dir: Path,
    *,
    seconds: float = CALIBRATION_S,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    scene: Scene | None = None,
) -> tuple[Path, Reference]:
    """Watch the empty room for ``seconds`` and write its reference; ValueError says why not.

    The frames are held in memory only until the statistics are taken."""
    missing = opencv_missing()
    if missing is not None:
        raise ValueError(missing)
    from roomwatch.hardware.camera.reference import Mask, build_reference
    from roomwatch.hardware.camera.source import CameraError

    mask = Mask.build(config.privacy_mask, config.width, config.height)
    try:
        source = open_source(config, monotonic, scene)
    except CameraError as exc:
        raise ValueError(str(exc)) from None
    frames = []
    try:
        for _ in range(max(5, round(seconds * config.fps))):
            frames.append(source.grab().frame)
            sleep(1 / config.fps)
    except CameraError as exc:
        raise ValueError(str(exc)) from None
    finally:
        source.close()
    reference = build_reference(frames, mask)
    frames.clear()
    path = reference_path(config, state_dir)
    reference.save(path)
    return path, reference
