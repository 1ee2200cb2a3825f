"""Presence from frames: the empty-room reference, motion, and OpenCV's people detector.

Each frame (8-bit grey, privacy mask already blanked) is judged three ways:

1. **Against the empty room.** Per 10 x 10-pixel cell, brightness and edge
   strength are compared with the reference. Lighting is normalised first: the
   median brightness ratio over all cells is the lights' gain, so lights dimmed
   by half change nothing, while a figure (darker or lighter than what it
   hides, and with edges where the wall had none) stands out as a cluster of
   changed cells. This is what sees a child who sits still for an hour: a
   still figure differs from the empty room for as long as it is there.
2. **Motion**, from a MOG2 background subtractor on the (gain-normalised)
   frame at quarter size: the fraction of the view that moved.
3. **OpenCV's HOG people detector** (built into the wheel; no downloaded
   weights), counted only where the frame also differs from the empty room.

Presence is claimed at once on evidence and given up only after
``absent_after_s`` without any; a view that is too dark, featureless, changed
beyond recognition or frozen for ``obscured_after_s`` (or no frame for as
long) is unknown, with a fault. Times are the frames' own timestamps, so a
test drives hours of frames on a virtual clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from roomwatch.hardware.camera.reading import CameraReading, Sighting
from roomwatch.hardware.camera.reference import MIN_COVERAGE, Mask, Reference, cell_stats
from roomwatch.hardware.camera.scenes import Frame

# OpenCV's own thread pool would take both cores for a 320x240 frame; the interlock comes first.
cv2.setNumThreads(1)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Thresholds; the defaults are those docs/camera.md reports the accuracy of."""

    lum_change: float = 0.2  # log brightness ratio, after the lights' gain is taken out
    lum_floor: float = 6.0  # grey levels: smaller differences are noise, whatever the ratio
    edge_change: float = 5.0  # added edge strength (grey levels per pixel) that counts
    min_blob_cells: int = 4  # a cluster this big is someone (4 cells = 20 x 20 px)
    weak_blob_cells: int = 2  # this big counts with motion or a people detection on it
    motion_min: float = 0.004  # fraction of the view moving that backs a weak cluster
    changed_max: float = 0.6  # more of the view changed than this: camera moved or blocked
    dark_level: float = 12.0  # mean grey below this: too dark to see (or covered)
    glare_level: float = 250.0
    flat_spread: float = 5.0  # grey-level spread below this: featureless (covered, fogged)
    edge_loss: float = 0.25  # edges below this fraction of the reference's: covered/blurred


@dataclass
class _Evidence:
    blob: int = 0
    changed: float = 0.0
    motion: float = 0.0
    people: int = 0
    obscured: str | None = None


@dataclass
class PresenceEstimator:
    """Judges a stream of frames; :meth:`observe` one frame, :meth:`no_frame` a failed grab."""

    reference: Reference | None
    mask: Mask
    absent_after_s: float = 5.0
    obscured_after_s: float = 2.0
    people_detector: bool = True
    reference_problem: str | None = None
    tuning: Tuning = field(default_factory=Tuning)

    def __post_init__(self) -> None:
        h, w = self.mask.visible.shape
        self._small = (w // 2, h // 2)
        self._small_visible = cv2.resize(
            self.mask.visible, self._small, interpolation=cv2.INTER_NEAREST
        )
        self._visible_small_px = max(1, int(np.count_nonzero(self._small_visible)))
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=120, varThreshold=25, detectShadows=False
        )
        self._kernel = np.ones((3, 3), np.uint8)
        self._hog: cv2.HOGDescriptor | None = None
        if self.people_detector:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(
                np.array(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
            )
        self._frames = 0
        self._previous: Frame | None = None
        self._frozen_since: float | None = None
        self._blind_since: float | None = None  # first of a run of unusable frames
        self._blind_reason: str | None = None
        self._view_since: float | None = None  # first of the current run of clear frames
        self._last_evidence: float | None = None
        self._last: CameraReading = CameraReading(Sighting.UNKNOWN)
        self._reference_ok = False
        if self.reference is not None:
            h, w = self.mask.visible.shape
            self.reference_problem = self.reference.check(w, h, self.mask)
            self._reference_ok = self.reference_problem is None
        if self.reference is None and self.reference_problem is None:
            self.reference_problem = "not calibrated (run `roomwatch agent --calibrate-camera`)"

    # ------------------------------------------------------------------ frames

    def observe(self, frame: Frame, t: float) -> CameraReading:
        """Judge ``frame`` (grey, the estimator's size) taken at ``t`` seconds."""
        blanked = self.mask.blank(frame)
        mean, spread = cv2.meanStdDev(blanked, mask=self.mask.visible)
        luminance = float(mean[0][0])
        if not self._reference_ok:
            return self._remember(
                CameraReading(Sighting.UNKNOWN, luminance=luminance, fault=self._fault(None))
            )
        frozen = self._frozen(frame, t)
        evidence = self._evidence(blanked, luminance, float(spread[0][0]))
        if frozen:
            evidence.obscured = "image frozen (the camera repeats the same frame)"
        if evidence.obscured is not None:
            return self._blind(t, evidence.obscured, luminance, evidence.motion)
        self._blind_since = self._blind_reason = None
        if self._view_since is None:
            self._view_since = t
        t_ = self.tuning
        strong = evidence.blob >= t_.min_blob_cells
        weak = evidence.blob >= t_.weak_blob_cells and (
            evidence.motion >= t_.motion_min or evidence.people > 0
        )
        if strong or weak:
            self._last_evidence = t
        if self._last_evidence is not None and t - self._last_evidence < self.absent_after_s:
            size = min(1.0, evidence.blob / (3 * t_.min_blob_cells))
            backed = 0.1 if evidence.motion >= t_.motion_min or evidence.people else 0.0
            confidence = min(0.99, 0.6 + 0.3 * size + backed) if (strong or weak) else 0.6
            sighting = Sighting.PRESENT
        elif t - self._view_since >= self.absent_after_s:
            sighting = Sighting.ABSENT
            confidence = min(0.99, 0.95 - 0.3 * evidence.blob / t_.min_blob_cells)
        else:
            sighting, confidence = Sighting.UNKNOWN, 0.0  # still looking after a blind spell
        return self._remember(
            CameraReading(sighting, round(confidence, 3), evidence.motion, luminance)
        )

    def no_frame(self, t: float, reason: str) -> CameraReading:
        """A grab failed at ``t``: unknown once it has lasted ``obscured_after_s``."""
        return self._blind(t, reason, None, None)

    # ---------------------------------------------------------------- details

    def _evidence(self, blanked: Frame, luminance: float, spread: float) -> _Evidence:
        assert self.reference is not None
        t_ = self.tuning
        ev = _Evidence()
        if luminance < t_.dark_level:
            ev.obscured = "too dark to see (lights off, or the lens covered)"
        elif luminance > t_.glare_level:
            ev.obscured = "dazzled (a light shone into the lens)"
        elif spread < t_.flat_spread:
            ev.obscured = "view featureless (lens covered or fogged)"
        if ev.obscured is not None:
            return ev
        ref = self.reference
        lum, tex = cell_stats(blanked, self.mask)
        valid = (self.mask.coverage >= MIN_COVERAGE) & (ref.luminance > 8) & (ref.luminance < 245)
        ratio = np.log((lum + 1.0) / (ref.luminance + 1.0))
        gain_log = float(np.median(ratio[valid])) if valid.any() else 0.0
        gain = math.exp(gain_log)
        expected_tex = ref.texture * gain
        if float(tex[valid].sum()) < t_.edge_loss * float(expected_tex[valid].sum()):
            ev.obscured = "view lost its detail (lens covered, smeared or out of focus)"
            return ev
        floor = t_.lum_floor + 3 * ref.noise * gain
        lum_changed = (np.abs(ratio - gain_log) > t_.lum_change) & (
            np.abs(lum - ref.luminance * gain) > floor
        )
        edge_changed = tex - expected_tex > t_.edge_change + 0.5 * expected_tex
        changed = (lum_changed | edge_changed) & valid
        ev.changed = float(changed.sum()) / max(1, int(valid.sum()))
        if ev.changed > t_.changed_max:
            ev.obscured = "view no longer matches the calibration (camera moved or blocked)"
            return ev
        if changed.any():
            count, _labels, stats, _ = cv2.connectedComponentsWithStats(
                changed.astype(np.uint8), connectivity=8
            )
            ev.blob = int(stats[1:count, cv2.CC_STAT_AREA].max()) if count > 1 else 0
        ev.motion = self._motion(blanked, gain)
        if self._hog is not None and ev.blob >= t_.weak_blob_cells:
            ev.people = self._people(blanked, changed)
        return ev

    def _motion(self, blanked: Frame, gain: float) -> float:
        """Fraction of the view that moved, on a frame with the lights' gain divided out."""
        small = cv2.resize(blanked, self._small, interpolation=cv2.INTER_AREA)
        if abs(gain - 1.0) > 0.02:
            small = cv2.convertScaleAbs(small, alpha=1.0 / max(gain, 0.05))
        foreground = self._subtractor.apply(small)
        self._frames += 1
        if self._frames <= 3:
            return 0.0  # the subtractor's first frames are all "new"
        foreground = cv2.bitwise_and(foreground, self._small_visible)
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, self._kernel)
        return round(float(np.count_nonzero(foreground)) / self._visible_small_px, 4)

    def _people(self, blanked: Frame, changed: np.ndarray) -> int:
        """HOG people detections whose centre lies on a changed cell."""
        assert self._hog is not None
        boxes, weights = self._hog.detectMultiScale(blanked, winStride=(8, 8), scale=1.2)
        found = 0
        rows, cols = changed.shape
        for (x, y, w, h), weight in zip(boxes, np.ravel(weights), strict=False):
            cx, cy = min(cols - 1, (x + w // 2) // 10), min(rows - 1, (y + h // 2) // 10)
            if weight > 0.5 and changed[cy, cx]:
                found += 1
        return found

    def _frozen(self, frame: Frame, t: float) -> bool:
        """A real sensor never gives two identical frames; a hung driver does."""
        same = self._previous is not None and np.array_equal(frame, self._previous)
        self._previous = frame
        if not same:
            self._frozen_since = None
            return False
        if self._frozen_since is None:
            self._frozen_since = t
        return t - self._frozen_since >= self.obscured_after_s

    def _blind(
        self, t: float, reason: str, luminance: float | None, motion: float | None
    ) -> CameraReading:
        if self._blind_since is None:
            self._blind_since = t
        self._blind_reason = reason
        self._view_since = None  # after a blind spell, look again before saying "empty"
        if t - self._blind_since < self.obscured_after_s:
            last = self._last
            return CameraReading(last.sighting, last.confidence, motion, luminance, last.fault)
        return self._remember(
            CameraReading(Sighting.UNKNOWN, 0.0, motion, luminance, self._fault(reason))
        )

    def _fault(self, reason: str | None) -> str:
        return f"camera: {reason or self.reference_problem}"

    def _remember(self, reading: CameraReading) -> CameraReading:
        self._last = reading
        return reading
