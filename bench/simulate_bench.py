"""Simulation speed: a 30-minute, 3-room scenario on the real agent, broker and collector.

The goal (issue 6): under 15 s of wall time. The scenario has the usual life of a room
(episodes, a lock event, a lapse, a hot room, time limits and checkpoints), no faults (a
broker restart waits for paho's reconnect, which is real time). Each run starts its own
embedded broker, collector (temporary SQLite) and three agents; the time taken includes all
of that. The median of a few runs is reported; ``smoke`` runs once.

Run: ``python bench/simulate_bench.py [--smoke] [--json FILE]``; ``measure(smoke)`` is the
entry point for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from roomwatch.simulation.engine import simulate
from roomwatch.simulation.scenario import parse_scenario

SCENARIO = """
duration: 30m
rooms:
  - {id: room-101, profile: us-mi, student_band: elementary}
  - {id: room-102, profile: us-ct}
  - {id: room-103, profile: default}
steps:
  - {at: 0s, room: room-101, set: {staff_present: true, occupied: true, door_closed: true}}
  - {at: 10s, room: room-102, set: {staff_present: true, occupied: true}}
  - {at: 60s, room: room-103, set: {staff_present: true, occupied: true, door_closed: true}}
  - {at: 90s, room: room-101, set: {door_locked: true}}
  - {at: 100s, room: room-101, set: {door_locked: false}}
  - {at: 5m, room: room-102, set: {staff_present: false}}
  - {at: 6m, room: room-102, set: {staff_present: true}}
  - {at: 10m, room: room-103, set: {temperature_c: 30}}
  - {at: 12m, room: room-103, set: {temperature_c: 22}}
  - {at: 20m, room: room-103, set: {occupied: false, door_closed: false}}
"""
VIRTUAL_S = 1800
GOAL_S = 15.0


def measure(smoke: bool) -> dict[str, Any]:
    """Wall seconds to simulate :data:`SCENARIO` (median of 3 runs; 1 when ``smoke``)."""
    logging.getLogger("roomwatch").setLevel(logging.CRITICAL)
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    scenario = parse_scenario(SCENARIO, "bench scenario")
    runs: list[float] = []
    alerts = messages = 0
    for _ in range(1 if smoke else 3):
        began = time.perf_counter()
        result = simulate(scenario)
        runs.append(time.perf_counter() - began)
        alerts, messages = len(result.alerts), result.messages.delivered
    median = statistics.median(runs)
    return {
        "scenario": "30 min, 3 rooms",
        "runs_s": [round(r, 3) for r in runs],
        "median_s": round(median, 3),
        "virtual_per_wall": round(VIRTUAL_S / median, 1),
        "alerts": alerts,
        "messages_delivered": messages,
        "goal": {"median_s_below": GOAL_S},
        "met": median < GOAL_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="One run, to check it works.")
    parser.add_argument("--json", type=Path, help="Write the result here too.")
    args = parser.parse_args()
    result = measure(args.smoke)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
