"""The camera as one of the agent's inputs: grab a frame, judge it, drop it; never raise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from roomwatch.hardware.camera.estimator import PresenceEstimator
from roomwatch.hardware.camera.reading import CameraReading, Sighting
from roomwatch.hardware.camera.source import CameraError, FrameSource
from roomwatch.hardware.faults import describe_bug

log = logging.getLogger(__name__)

#: After this many failed grabs in a row the source is closed and opened again.
REOPEN_AFTER_FAILURES = 10
RETRY_OPEN_S = 10.0


class Camera:
    """A frame source and a presence estimator; :meth:`read` analyses one frame.

    The frame exists only inside :meth:`read` (and as the estimator's previous frame,
    for the frozen-image check): nothing here stores, logs or returns it.
    """

    name = "camera"

    def __init__(
        self,
        opener: Callable[[], FrameSource],
        estimator: PresenceEstimator,
        interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        retry_s: float = RETRY_OPEN_S,
    ) -> None:
        self.interval_s = interval_s
        self.estimator = estimator
        self._opener = opener
        self._monotonic = monotonic
        self._retry_s = retry_s
        self._source: FrameSource | None = None
        self._next_open = monotonic()
        self._failures = 0
        self.label = "camera"

    def read(self) -> CameraReading:
        try:
            return self._read()
        except Exception as exc:
            log.exception("camera: analysis failed")
            return CameraReading(Sighting.UNKNOWN, fault=f"camera: {describe_bug(exc)}")

    def _read(self) -> CameraReading:
        now = self._monotonic()
        source = self._open(now)
        if source is None:
            return self.estimator.no_frame(now, f"cannot open: {self._open_error}")
        try:
            grabbed = source.grab()
        except CameraError as exc:
            self._failures += 1
            if self._failures >= REOPEN_AFTER_FAILURES:
                self._close_source()
            return self.estimator.no_frame(self._monotonic(), str(exc))
        self._failures = 0
        return self.estimator.observe(grabbed.frame, grabbed.t)

    _open_error = ""

    def _open(self, now: float) -> FrameSource | None:
        if self._source is None and now >= self._next_open:
            self._next_open = now + self._retry_s
            try:
                self._source = self._opener()
                self.label = self._source.label
                log.info("camera: %s open", self.label)
            except Exception as exc:  # noqa: BLE001 - a missing camera must not stop the agent
                self._open_error = str(exc) or type(exc).__name__
                log.warning("camera cannot be opened: %s", self._open_error)
        return self._source

    def _close_source(self) -> None:
        source, self._source, self._failures = self._source, None, 0
        if source is not None:
            try:
                source.close()
            except Exception:
                log.exception("camera: closing %s failed", source.label)

    def close(self) -> None:
        self._close_source()
