"""Precision and recall of camera occupancy over seeded, labelled synthetic clips.

    python bench/camera_eval.py [--clips 260] [--seed 2026] [--json out.json]

Every clip is generated from the seed (roomwatch.hardware.camera.evaluation),
so a run gives the same numbers on any machine; docs/camera.md reports them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from roomwatch.hardware.camera.evaluation import make_clips, run_clip, score


def evaluate(clips: int = 260, seed: int = 2026) -> dict[str, object]:
    started = time.perf_counter()
    outcomes = [run_clip(clip) for clip in make_clips(clips, seed)]
    result = score(outcomes)
    result["seed"] = seed
    result["mistakes"] = [
        {"kind": o.clip.kind, "scene_seed": o.clip.scene.seed, "verdict": o.sighting.value}
        for o in outcomes
        if not o.correct
    ]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=260)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", type=Path, help="Also write the result here.")
    args = parser.parse_args()
    result = evaluate(args.clips, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
