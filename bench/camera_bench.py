"""Camera occupancy: analysis speed and CPU per 320x240 frame, and the agent's memory.

    python bench/camera_bench.py [--smoke]

``measure(smoke)`` returns a dict (bench/run.py can call it):

* ``frames_per_s`` / ``cpu_ms_per_frame``: the estimator alone (reference
  comparison, MOG2 motion, HOG people detector) on pre-rendered synthetic
  frames of someone walking in and sitting, one thread, with and without the
  people detector; ``cpu_share_at_2fps`` is the fraction of one core the
  default 2 fps costs.
* ``agent_rss_mb``: resident memory of a fresh agent process (mock pins, the
  synthetic camera on its own 2 fps job, scheduler running, MQTT link trying a
  closed port) after running for a while, with the camera and without.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores"


def _speed(frames: int, people_detector: bool) -> dict[str, float]:
    from roomwatch.hardware.camera.estimator import PresenceEstimator
    from roomwatch.hardware.camera.reference import Mask, build_reference
    from roomwatch.hardware.camera.scenes import Figure, Scene

    scene = Scene(seed=1, figures=(Figure(enter_at=2.0, posture="sit"),))
    mask = Mask.build(scene.mask_polygons(), 320, 240)
    empty = Scene(seed=1)
    reference = build_reference(
        [f for f in (empty.render(-9 + i) for i in range(8)) if f is not None], mask
    )
    clip = [f for f in (scene.render(i / 2) for i in range(frames)) if f is not None]
    estimator = PresenceEstimator(reference, mask, people_detector=people_detector)
    for i, frame in enumerate(clip[:5]):  # warm up (allocations, OpenCV's first calls)
        estimator.observe(frame, -10 + i)
    estimator = PresenceEstimator(reference, mask, people_detector=people_detector)
    wall, cpu = time.perf_counter(), time.process_time()
    for i, frame in enumerate(clip):
        estimator.observe(frame, i / 2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "frames": len(clip),
        "frames_per_s": round(len(clip) / wall, 1),
        "cpu_ms_per_frame": round(cpu / len(clip) * 1000, 2),
        "cpu_share_at_2fps": round(cpu / len(clip) * 2, 4),
    }


CHILD = """
import json, logging, sys, time
from pathlib import Path
logging.disable(logging.CRITICAL)
from roomwatch.core.clock import WallClock
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.hardware.gpio import mock_factory
from roomwatch.hardware.mock_environment import MockEnvironment
folder, with_camera, seconds = Path(sys.argv[1]), sys.argv[2] == "camera", float(sys.argv[3])
text = "mqtt: {host: 127.0.0.1, port: 9}\\nsensors:\\n  door_closed: {kind: contact, pin: 27}\\n"
text += "  motion: {kind: pir, pin: 22}\\n"
if with_camera:
    text += "  camera: {kind: v4l2}\\n"
config = parse_model(text, AgentConfig).model_copy(update={"state_dir": folder})
if with_camera:
    from roomwatch.hardware.camera.build import calibrate, mock_scene
    ticks = [0.0]
    calibrate(config.sensors.camera, folder, scene=mock_scene(config.sensors.camera),
              monotonic=lambda: ticks[0], sleep=lambda s: ticks.__setitem__(0, ticks[0] + s))
environment = MockEnvironment(config.sensors)
service = AgentService(config, WallClock(), mock_factory(), environment=environment)
service.start()
time.sleep(seconds)
reading = service.agent.camera_reading
lines = (line.split(":", 1) for line in open("/proc/self/status"))
status = {k: int(v.split()[0]) for k, v in lines if v.strip().endswith("kB")}
service.stop()
print(json.dumps({"rss_kb": status["VmRSS"], "hwm_kb": status["VmHWM"],
                  "camera": None if reading is None else reading.sighting.value}))
"""


def _agent_rss(with_camera: bool, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="roomwatch-camera-bench-") as folder:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                folder,
                "camera" if with_camera else "none",
                str(seconds),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(smoke: bool) -> dict[str, Any]:
    frames = 40 if smoke else 600
    seconds = 3.0 if smoke else 20.0
    with_camera = _agent_rss(True, seconds)
    without = _agent_rss(False, seconds)
    return {
        "machine": _machine(),
        "frame": "320x240 grey",
        "with_people_detector": _speed(frames, True),
        "without_people_detector": _speed(frames, False),
        "agent_rss_mb": {
            "camera_on": round(with_camera["rss_kb"] / 1024, 1),
            "camera_on_peak": round(with_camera["hwm_kb"] / 1024, 1),
            "no_camera": round(without["rss_kb"] / 1024, 1),
            "camera_verdict_at_end": with_camera["camera"],
            "ran_s": seconds,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="A quick run (CI).")
    parser.add_argument("--json", type=Path, help="Write the result here too (bench/run.py).")
    args = parser.parse_args()
    text = json.dumps(measure(args.smoke), indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
