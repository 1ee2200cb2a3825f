"""Labelled synthetic clips and the estimator's precision and recall on them.

``bench/camera_eval.py`` runs the full set (docs/camera.md reports it); a test
runs a small sample. Each clip is a seeded :class:`Scene`, calibrated on its
own empty room (as an installer would), then played at 2 fps for
``duration_s``; the sighting at the end is compared with the truth. Unknown
counts as "present", as it does for the interlock, so a blind camera on an
empty room is a false positive here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from roomwatch.hardware.camera.estimator import PresenceEstimator
from roomwatch.hardware.camera.reading import Sighting
from roomwatch.hardware.camera.reference import Mask, build_reference
from roomwatch.hardware.camera.scenes import Figure, Posture, Scene

FPS = 2.0
CALIBRATION_FRAMES = 10

#: The kinds of clip, cycled through in order so that every sample has each kind.
KINDS = (
    "empty",
    "empty_dimmed",
    "empty_door",
    "walk_in_sit",
    "empty_noisy",
    "walk_in_stand",
    "empty_brighter",
    "curled_child",
    "empty_door_dimmed",
    "still_all_along",
    "came_and_left",
    "still_lights_dim",
    "still_door_open",
)


@dataclass(frozen=True, slots=True)
class Clip:
    kind: str
    scene: Scene
    duration_s: float

    @property
    def occupied(self) -> bool:
        """The truth at the end of the clip."""
        return self.scene.occupied(self.duration_s - 1 / FPS)


def _figure(rng: random.Random, enter_at: float, posture: Posture, size: float = 1.0) -> Figure:
    return Figure(
        enter_at=enter_at,
        walk_s=rng.uniform(4, 8),
        spot=(rng.uniform(0.35, 0.92), rng.uniform(0.62, 0.95)),
        posture=posture,
        size=size * rng.uniform(0.85, 1.1),
        shade=rng.uniform(20, 230),  # clothing of any shade, some close to the wall or floor
        skin=rng.uniform(120, 210),
    )


def make_clip(kind: str, seed: int) -> Clip:
    """One clip of ``kind``; everything random comes from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - seeded clips, not secrets
    base = Scene(seed=seed, noise=rng.uniform(1.5, 5.0))
    duration = 30.0
    dim_at = rng.uniform(4, 20)
    dim = ((0.0, 1.0), (dim_at, 1.0), (dim_at + rng.choice([0.5, 5, 10]), rng.uniform(0.45, 0.7)))
    door = ((rng.uniform(2, 12), rng.uniform(18, 40)),)
    scene: Scene
    match kind:
        case "empty":
            scene = base
        case "empty_noisy":
            scene = replace(base, noise=rng.uniform(6, 9))
        case "empty_dimmed":
            scene = replace(base, lights=dim)
        case "empty_brighter":
            scene = replace(base, lights=((0.0, 1.0), (dim_at, 1.0), (dim_at + 3, 1.25)))
        case "empty_door":
            scene = replace(base, door_open=door, passerby=rng.random() < 0.5)
        case "empty_door_dimmed":
            scene = replace(base, door_open=door, lights=dim)
        case "walk_in_sit":
            scene = replace(base, figures=(_figure(rng, rng.uniform(1, 12), "sit"),))
        case "walk_in_stand":
            scene = replace(base, figures=(_figure(rng, rng.uniform(1, 12), "stand"),))
        case "curled_child":
            scene = replace(base, figures=(_figure(rng, rng.uniform(1, 10), "curl", 0.7),))
        case "still_all_along":
            posture: Posture = rng.choice(["sit", "curl", "stand"])
            scene = replace(base, figures=(_figure(rng, -600.0, posture),))
        case "came_and_left":
            figure = _figure(rng, rng.uniform(1, 4), "stand")
            scene = replace(base, figures=(replace(figure, leave_at=figure.enter_at + 10),))
        case "still_lights_dim":
            scene = replace(base, figures=(_figure(rng, -600.0, "sit"),), lights=dim)
        case "still_door_open":
            scene = replace(base, figures=(_figure(rng, -600.0, "sit"),), door_open=door)
        case _:
            raise ValueError(f"unknown clip kind {kind!r}")
    return Clip(kind, scene, duration)


def make_clips(count: int, seed: int = 2026) -> list[Clip]:
    """``count`` clips, every kind in turn, each with its own seed drawn from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - seeded clips, not secrets
    return [make_clip(KINDS[i % len(KINDS)], rng.randrange(2**31)) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Outcome:
    clip: Clip
    sighting: Sighting

    @property
    def predicted(self) -> bool:
        return self.sighting is not Sighting.ABSENT  # unknown counts as occupied

    @property
    def correct(self) -> bool:
        return self.predicted == self.clip.occupied


def run_clip(clip: Clip) -> Outcome:
    """Calibrate on the clip's own empty room, then play it; the sighting at its end."""
    scene = clip.scene
    mask = Mask.build(scene.mask_polygons(), scene.width, scene.height)
    empty = Scene(seed=scene.seed, width=scene.width, height=scene.height, noise=scene.noise)
    frames = [empty.render(-1000.0 + i / FPS) for i in range(CALIBRATION_FRAMES)]
    reference = build_reference([f for f in frames if f is not None], mask)
    estimator = PresenceEstimator(reference, mask)
    sighting = Sighting.UNKNOWN
    for i in range(round(clip.duration_s * FPS)):
        t = i / FPS
        frame = scene.render(t)
        reading = estimator.observe(frame, t) if frame is not None else estimator.no_frame(t, "")
        sighting = reading.sighting
    return Outcome(clip, sighting)


def score(outcomes: list[Outcome]) -> dict[str, object]:
    """Precision and recall of "occupied", and each kind's count of mistakes."""
    tp = sum(o.predicted and o.clip.occupied for o in outcomes)
    fp = sum(o.predicted and not o.clip.occupied for o in outcomes)
    fn = sum(not o.predicted and o.clip.occupied for o in outcomes)
    by_kind: dict[str, list[int]] = {}
    for o in outcomes:
        right_wrong = by_kind.setdefault(o.clip.kind, [0, 0])
        right_wrong[0 if o.correct else 1] += 1
    return {
        "clips": len(outcomes),
        "occupied_clips": sum(o.clip.occupied for o in outcomes),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "unknown": sum(o.sighting is Sighting.UNKNOWN for o in outcomes),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "mistakes_by_kind": {k: v[1] for k, v in sorted(by_kind.items())},
    }
