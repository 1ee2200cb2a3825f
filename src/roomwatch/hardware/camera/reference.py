"""The empty room, as a grid of numbers: the only thing the camera keeps (docs/camera.md).

The frame is cut into cells of 10 x 10 pixels (32 x 24 cells at 320 x 240).
For each cell the reference keeps two numbers, taken over a few seconds of
the empty room at installation: its average brightness and its average edge
strength. That is 1,536 numbers in a small JSON file that anyone can read: no
pixel is kept, a cell is far coarser than a face, and the room was empty. It
stays on the device (mode 0600 in the agent's state directory); nothing sends,
logs or serves it.

Privacy mask: masked pixels are set to zero on arrival, before anything looks
at them, so a masked region contributes nothing to a cell, a statistic or a
decision; cells mostly under the mask are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from roomwatch.hardware.camera.scenes import Frame

Cells = npt.NDArray[np.float32]
Polygon = list[tuple[float, float]]

CELL_PX = 10
REFERENCE_VERSION = 1
#: A cell counts when at least this much of it is outside the privacy mask.
MIN_COVERAGE = 0.5


class ReferenceError(Exception):
    """The reference file is missing, unreadable, or for another camera set-up."""


def mask_digest(polygons: list[Polygon]) -> str:
    canonical = json.dumps([[list(p) for p in poly] for poly in polygons], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Mask:
    """The privacy mask at one frame size: 255 where the camera may look, 0 where blanked."""

    visible: Frame
    weight: Cells  # per pixel, 1.0 where texture may be measured (eroded off the mask edge)
    coverage: Cells  # per cell, the visible fraction
    digest: str

    @classmethod
    def build(cls, polygons: list[Polygon], width: int, height: int) -> Mask:
        visible = np.full((height, width), 255, np.uint8)
        for poly in polygons:
            points = np.array([[round(x * width), round(y * height)] for x, y in poly], np.int32)
            cv2.fillPoly(visible, [points], 0)
        eroded = cv2.erode(visible, np.ones((7, 7), np.uint8), borderType=cv2.BORDER_REPLICATE)
        grid = (width // CELL_PX, height // CELL_PX)
        coverage = cv2.resize(visible.astype(np.float32) / 255, grid, interpolation=cv2.INTER_AREA)
        return cls(
            visible,
            (eroded.astype(np.float32) / 255).astype(np.float32),
            np.asarray(coverage, np.float32),
            mask_digest(polygons),
        )

    def blank(self, frame: Frame) -> Frame:
        """The frame with the masked regions set to zero (first thing done to every frame)."""
        blanked: Frame = np.asarray(cv2.bitwise_and(frame, self.visible), np.uint8)
        return blanked


def cell_stats(blanked: Frame, mask: Mask) -> tuple[Cells, Cells]:
    """Per cell: mean brightness and mean edge strength, over the visible pixels only."""
    h, w = blanked.shape
    grid = (w // CELL_PX, h // CELL_PX)
    image = blanked.astype(np.float32)
    smooth = cv2.GaussianBlur(image, (5, 5), 1.2)  # edges of the room, not of sensor noise
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    edges = (np.abs(gx) + np.abs(gy)) * mask.weight
    area = np.maximum(mask.coverage, 1e-3)
    lum = cv2.resize(image, grid, interpolation=cv2.INTER_AREA) / area
    weight = np.maximum(cv2.resize(mask.weight, grid, interpolation=cv2.INTER_AREA), 1e-3)
    tex = cv2.resize(edges, grid, interpolation=cv2.INTER_AREA) / weight
    return lum.astype(np.float32), tex.astype(np.float32)


@dataclass(frozen=True)
class Reference:
    """The empty room's cell statistics, and what they were taken with."""

    width: int
    height: int
    luminance: Cells
    texture: Cells
    noise: float  # typical frame-to-frame wobble of a cell's brightness (grey levels)
    mask: str  # digest of the privacy mask in force at calibration
    frames: int
    created: str

    def check(self, width: int, height: int, mask: Mask) -> str | None:
        """Why this reference does not fit the running camera, or None."""
        if (self.width, self.height) != (width, height):
            return f"calibrated at {self.width}x{self.height}, running at {width}x{height}"
        if self.mask != mask.digest:
            return "the privacy mask changed since calibration"
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "what": "Roomwatch camera reference: per 10x10-pixel cell of the EMPTY room, "
                "average brightness and edge strength. No image is stored.",
                "version": REFERENCE_VERSION,
                "width": self.width,
                "height": self.height,
                "cell_px": CELL_PX,
                "noise": round(self.noise, 2),
                "mask": self.mask,
                "frames": self.frames,
                "created": self.created,
                "luminance": [[round(float(v), 1) for v in row] for row in self.luminance],
                "texture": [[round(float(v), 1) for v in row] for row in self.texture],
            },
            indent=1,
        )

    def save(self, path: Path) -> None:
        """Write atomically, readable by the agent's user only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".camera-reference-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.to_json())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Reference:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReferenceError(
                f"not calibrated: no reference at {path} "
                "(run `roomwatch agent --calibrate-camera` with the room empty)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ReferenceError(f"reference {path} is unreadable: {exc}") from None
        try:
            if data["version"] != REFERENCE_VERSION or data["cell_px"] != CELL_PX:
                raise ValueError("written by another version; calibrate again")
            width, height = int(data["width"]), int(data["height"])
            lum = np.array(data["luminance"], np.float32)
            tex = np.array(data["texture"], np.float32)
            grid = (height // CELL_PX, width // CELL_PX)
            if lum.shape != grid or tex.shape != grid:
                raise ValueError(f"cell grids are not {grid[1]}x{grid[0]}")
            return cls(
                width,
                height,
                lum,
                tex,
                float(data["noise"]),
                str(data["mask"]),
                int(data["frames"]),
                str(data["created"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferenceError(f"reference {path} is not valid: {exc}") from None


#: Calibration refuses when a cell's brightness wanders more than this (grey levels).
CALIBRATION_MAX_WANDER = 12.0


def build_reference(frames: list[Frame], mask: Mask, now: datetime | None = None) -> Reference:
    """The reference from frames of the empty, still room; ValueError says what is wrong."""
    if len(frames) < 3:
        raise ValueError("need at least 3 frames of the empty room")
    h, w = frames[0].shape
    stats = [cell_stats(mask.blank(f), mask) for f in frames]
    lum = np.stack([s[0] for s in stats])
    tex = np.stack([s[1] for s in stats])
    valid = mask.coverage >= MIN_COVERAGE
    if float(np.median(lum[:, valid])) < 20:
        raise ValueError("the room is too dark to calibrate: turn the lights on")
    wander = (lum.max(axis=0) - lum.min(axis=0))[valid]
    moving = int((wander > CALIBRATION_MAX_WANDER).sum())
    if moving > 2:
        raise ValueError(
            f"something moved during calibration ({moving} of {int(valid.sum())} cells changed): "
            "the room must be empty and still"
        )
    noise = float(np.median(lum.std(axis=0)[valid]))
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Reference(
        w,
        h,
        np.median(lum, axis=0).astype(np.float32),
        np.median(tex, axis=0).astype(np.float32),
        noise,
        mask.digest,
        len(frames),
        created,
    )
