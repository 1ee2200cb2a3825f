"""Where frames come from: the Pi camera, a V4L2 device, a video file, or a synthetic scene.

A source hands out one greyscale frame per :meth:`FrameSource.grab`, with its
capture time on the caller's monotonic clock, and keeps nothing: the frame is
an array in memory that the caller analyses and drops. No source here has any
way to write, encode or send a frame, by design (docs/camera.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from roomwatch.hardware.camera.scenes import Frame, Scene

log = logging.getLogger(__name__)

Monotonic = Callable[[], float]


class CameraError(Exception):
    """The camera cannot be opened or gave no frame; the message says why, for the fault."""


@dataclass(frozen=True, slots=True)
class Grabbed:
    """One frame and when it was taken (seconds on the monotonic clock)."""

    t: float
    frame: Frame


class FrameSource(Protocol):
    label: str

    def grab(self) -> Grabbed:
        """The next frame; raises :class:`CameraError` when there is none."""
        ...

    def close(self) -> None: ...


def to_grey(frame: Any, width: int, height: int) -> Frame:
    """Any frame a driver hands back, as ``height`` x ``width`` 8-bit grey."""
    array = np.asarray(frame)
    if array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2GRAY)
    elif array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2GRAY)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or array.size == 0:
        raise CameraError(f"unexpected frame shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape != (height, width):
        array = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(array)


class OpenCvSource:
    """A V4L2 device (``/dev/video0`` or an index) or a video file, through OpenCV."""

    def __init__(
        self,
        device: str | int,
        width: int,
        height: int,
        *,
        is_file: bool = False,
        loop: bool = True,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.label = f"video file {device}" if is_file else f"v4l2 {device}"
        self._width, self._height = width, height
        self._device, self._is_file, self._loop = device, is_file, loop
        self._monotonic = monotonic
        if is_file and not Path(str(device)).is_file():
            raise CameraError(f"{device}: no such video file")
        backend = cv2.CAP_ANY if is_file else cv2.CAP_V4L2
        self._capture = cv2.VideoCapture(device, backend)
        if not self._capture.isOpened():
            raise CameraError(f"{self.label}: cannot be opened")
        if not is_file:
            # Ask the driver for the small size itself: less USB traffic and CPU.
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def grab(self) -> Grabbed:
        ok, frame = self._capture.read()
        if not ok and self._is_file and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            raise CameraError(f"{self.label}: no frame")
        return Grabbed(self._monotonic(), to_grey(frame, self._width, self._height))

    def close(self) -> None:
        self._capture.release()


class PicameraSource:
    """The Raspberry Pi camera through Picamera2 (imported only when this source is built)."""

    def __init__(self, width: int, height: int, *, monotonic: Monotonic = time.monotonic) -> None:
        self.label = "picamera2"
        self._width, self._height = width, height
        self._monotonic = monotonic
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed (on Raspberry Pi OS: apt install python3-picamera2)"
            ) from exc
        try:
            self._camera = Picamera2()
            # YUV420's first plane is the luminance: greyscale at no conversion cost.
            config = self._camera.create_video_configuration(
                main={"size": (width, height), "format": "YUV420"}
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:
            raise CameraError(f"picamera2: cannot be opened: {exc}") from exc

    def grab(self) -> Grabbed:
        try:
            yuv = self._camera.capture_array("main")
        except Exception as exc:
            raise CameraError(f"picamera2: no frame: {exc}") from exc
        return Grabbed(
            self._monotonic(),
            to_grey(yuv[: self._height, : self._width], self._width, self._height),
        )

    def close(self) -> None:
        try:
            self._camera.stop()
            self._camera.close()
        except Exception:
            log.exception("closing the Pi camera failed")


class FakeSource:
    """Plays a synthetic :class:`Scene`: the frame at the clock's time (tests, ``--mock``)."""

    def __init__(self, scene: Scene, monotonic: Monotonic, start: float | None = None) -> None:
        self.label = f"synthetic scene {scene.seed}"
        self.scene = scene
        self._monotonic = monotonic
        self._start = monotonic() if start is None else start
        self.grabs = 0

    def grab(self) -> Grabbed:
        t = self._monotonic()
        self.grabs += 1
        frame = self.scene.render(t - self._start)
        if frame is None:
            raise CameraError(f"{self.label}: no frame")
        return Grabbed(t, frame)

    def close(self) -> None:
        pass
