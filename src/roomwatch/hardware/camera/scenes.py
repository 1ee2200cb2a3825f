"""Synthetic camera scenes, drawn with numpy and OpenCV: the fake camera's room.

For tests, the evaluation (bench/camera_eval.py), the benchmark and ``--mock``.
Nothing here is a picture of anyone: a ceiling-corner view of a plain room with
a padded bench, a vent and a door on the left, and, when asked, simple figures
(head, torso, limbs) that walk in, stand, sit or curl up on the floor, lights
that dim, a door that opens onto a bright corridor where someone walks past, a
hand over the lens and a camera that stops answering. Every frame is a pure
function of the scene and the time, so a clip replays exactly.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
Image = npt.NDArray[np.float32]
Interval = tuple[float, float]
Posture = Literal["stand", "sit", "curl"]

#: The doorway, as fractions of the frame (x0, y0, x1, y1). The room's privacy mask covers it:
#: what an open door shows is the corridor, outside the room.
DOORWAY = (0.03, 0.12, 0.21, 0.8)
#: Where a figure stands when it steps through the doorway into the room (feet, fractions).
THRESHOLD = (0.26, 0.78)


@dataclass(frozen=True, slots=True)
class Figure:
    """Someone who walks in at ``enter_at`` and settles at ``spot`` (their feet, fractions)."""

    enter_at: float = 0.0
    walk_s: float = 6.0
    spot: tuple[float, float] = (0.6, 0.75)
    posture: Posture = "sit"  # once settled
    settle_at: float | None = None  # when the posture is taken (default: on arrival)
    leave_at: float | None = None  # walks back out through the door (takes walk_s)
    size: float = 1.0  # 1 = an adult; 0.7 = a young child
    shade: float = 60.0  # clothing grey level under full light
    skin: float = 170.0

    def where(self, t: float) -> tuple[float, float, Posture, float] | None:
        """(x, y, posture, walking phase) at ``t``, or None while outside the room."""
        if t < self.enter_at:
            return None
        arrive = self.enter_at + self.walk_s
        if self.leave_at is not None and t >= self.leave_at:
            gone = (t - self.leave_at) / self.walk_s
            if gone >= 1:
                return None
            return (*_lerp(self.spot, THRESHOLD, gone), "stand", t * 3.0)
        if t < arrive:
            return (*_lerp(THRESHOLD, self.spot, (t - self.enter_at) / self.walk_s), "stand", t * 3)
        settle = arrive if self.settle_at is None else self.settle_at
        return (*self.spot, self.posture if t >= settle else "stand", 0.0)


def _lerp(a: tuple[float, float], b: tuple[float, float], f: float) -> tuple[float, float]:
    return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f


def _during(t: float, intervals: tuple[Interval, ...]) -> bool:
    return any(start <= t < end for start, end in intervals)


@dataclass(frozen=True, slots=True)
class Scene:
    """A room and what happens in it; :meth:`render` draws the frame at ``t`` seconds."""

    seed: int = 0
    width: int = 320
    height: int = 240
    noise: float = 3.0  # sensor noise, grey levels (standard deviation)
    lights: tuple[tuple[float, float], ...] = ((0.0, 1.0),)  # (t, gain) keyframes, linear
    door_open: tuple[Interval, ...] = ()
    passerby: bool = False  # someone crosses the corridor while the door is open
    figures: tuple[Figure, ...] = ()
    covered: tuple[Interval, ...] = ()  # a hand or tape over the lens
    failed: tuple[Interval, ...] = ()  # the camera gives no frame

    def mask_polygons(self) -> list[list[tuple[float, float]]]:
        """The privacy mask an installer draws for this room: the doorway, with a margin."""
        x0, y0, x1, y1 = DOORWAY
        x0, y0, x1, y1 = (round(v, 3) for v in (x0 - 0.02, y0 - 0.03, x1 + 0.02, y1 + 0.02))
        return [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]]

    def occupied(self, t: float) -> bool:
        """The ground truth: someone is inside the room (not the corridor) at ``t``."""
        return any(f.where(t) is not None for f in self.figures)

    def gain(self, t: float) -> float:
        keys = sorted(self.lights)
        if t <= keys[0][0]:
            return keys[0][1]
        for (t0, g0), (t1, g1) in itertools.pairwise(keys):
            if t < t1:
                return g0 + (g1 - g0) * (t - t0) / (t1 - t0)
        return keys[-1][1]

    def render(self, t: float) -> Frame | None:
        """The greyscale frame at ``t`` (None while the camera has failed)."""
        if _during(t, self.failed):
            return None
        rng = np.random.default_rng((self.seed, round(t * 1000) % 2**32))
        if _during(t, self.covered):
            # A palm or tape: dark, nearly featureless, a little light bleeding round the edge.
            base = _background(self.seed, self.width, self.height)
            image = cv2.GaussianBlur(base, (0, 0), 25) * 0.08 + 6.0
        else:
            image = _background(self.seed, self.width, self.height).copy()
            self._draw_door(image, t)
            for figure in self.figures:
                at = figure.where(t)
                if at is not None:
                    _draw_figure(image, figure, *at)
            image *= self.gain(t)
        image += rng.normal(0.0, self.noise, image.shape).astype(np.float32)
        frame: Frame = np.clip(image, 0, 255).astype(np.uint8)
        return frame

    def _draw_door(self, image: Image, t: float) -> None:
        w, h = self.width, self.height
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(DOORWAY, (w, h, w, h), strict=True))
        if not _during(t, self.door_open):
            return  # the closed door is part of the background
        image[y0:y1, x0:x1] = 205.0  # the lit corridor
        image[round(y1 - (y1 - y0) * 0.25) : y1, x0:x1] = 170.0  # its floor
        if self.passerby:
            phase = (t * 0.4) % 1.0
            cx = x0 + (x1 - x0) * phase
            cv2.ellipse(
                image,
                (round(cx), round(y0 + (y1 - y0) * 0.55)),
                (max(2, (x1 - x0) // 5), (y1 - y0) // 3),
                0,
                0,
                360,
                50.0,
                -1,
            )


@functools.cache
def _background(seed: int, width: int, height: int) -> Image:
    """The empty room under full light (cached: it never changes)."""
    rng = np.random.default_rng(seed)
    w, h = width, height
    wall_level = 140 + rng.uniform(-15, 15)
    floor_level = 100 + rng.uniform(-15, 15)
    image = np.full((h, w), wall_level, np.float32)
    horizon = round(h * rng.uniform(0.5, 0.6))
    image[horizon:, :] = floor_level
    # Paint and carpet are not flat: a soft, seeded texture.
    coarse = rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32)
    image += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * 6
    # Light falls off towards the corners.
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    image *= 1.0 - 0.25 * (((xs - w / 2) / w) ** 2 + ((ys - h / 3) / h) ** 2)
    # A padded bench along the back wall, a vent, a light switch.
    bx = round(w * rng.uniform(0.4, 0.6))
    cv2.rectangle(image, (bx, horizon - h // 10), (bx + w // 4, horizon + h // 20), 85.0, -1)
    vx, vy = round(w * rng.uniform(0.7, 0.85)), round(h * 0.15)
    for i in range(5):
        cv2.line(image, (vx, vy + 3 * i), (vx + w // 12, vy + 3 * i), 90.0, 1)
    cv2.rectangle(
        image, (round(w * 0.25), round(h * 0.4)), (round(w * 0.27), round(h * 0.44)), 200.0, -1
    )
    # The closed door in its frame.
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(DOORWAY, (w, h, w, h), strict=True))
    image[y0:y1, x0:x1] = 120.0
    cv2.rectangle(image, (x0, y0), (x1, y1), 70.0, 2)
    cv2.circle(image, (x1 - 6, (y0 + y1) // 2), 3, 200.0, -1)
    return image


def _draw_figure(
    image: Image, figure: Figure, fx: float, fy: float, posture: Posture, phase: float
) -> None:
    """Head, torso and limbs, scaled for distance (lower in the frame = nearer the camera)."""
    h, w = image.shape
    scale = figure.size * h * (0.25 + 0.45 * fy)  # standing height in pixels
    x, y = fx * w, fy * h
    cloth, skin = figure.shade, figure.skin

    def ellipse(cx: float, cy: float, ax: float, ay: float, shade: float, angle: float = 0) -> None:
        cv2.ellipse(
            image,
            (round(cx * 16), round(cy * 16)),
            (max(1, round(ax * 16)), max(1, round(ay * 16))),
            angle,
            0,
            360,
            shade,
            -1,
            cv2.LINE_AA,
            4,
        )

    if posture == "stand":
        swing = math.sin(phase * math.pi) * scale * 0.06
        ellipse(
            x - scale * 0.05 + swing, y - scale * 0.22, scale * 0.045, scale * 0.22, cloth * 0.8
        )
        ellipse(
            x + scale * 0.05 - swing, y - scale * 0.22, scale * 0.045, scale * 0.22, cloth * 0.8
        )
        ellipse(x, y - scale * 0.6, scale * 0.12, scale * 0.2, cloth)
        ellipse(x - scale * 0.14, y - scale * 0.58, scale * 0.035, scale * 0.17, cloth * 1.1)
        ellipse(x + scale * 0.14, y - scale * 0.58, scale * 0.035, scale * 0.17, cloth * 1.1)
        ellipse(x, y - scale * 0.88, scale * 0.07, scale * 0.085, skin)
    elif posture == "sit":
        ellipse(x, y - scale * 0.08, scale * 0.2, scale * 0.08, cloth * 0.8)  # folded legs
        ellipse(x, y - scale * 0.3, scale * 0.12, scale * 0.18, cloth)
        ellipse(x, y - scale * 0.55, scale * 0.07, scale * 0.085, skin)
    else:  # curled up on the floor
        ellipse(x, y - scale * 0.08, scale * 0.24, scale * 0.1, cloth, angle=10)
        ellipse(x + scale * 0.24, y - scale * 0.12, scale * 0.07, scale * 0.075, skin)
