"""Agent footprint: resident memory and CPU of a real ``roomwatch agent --mock`` process.

The agent runs the fully fitted bench room (``bench/rooms/fitted-room.yaml``: every sensor on
mock pins and fake chips) with sampling and telemetry at 1 Hz, against a real Mosquitto on
loopback, with a real collector in its own process storing and acknowledging (so the outbox
stays short, as in service). The measuring window opens once the agent has announced itself
online (start-up is reported apart) and lasts 60 s (5 s with ``--smoke``). Each second the
bench reads VmRSS (and its anonymous and file-backed parts) from /proc/PID/status; CPU is
utime + stime from /proc/PID/stat over the window, as a percentage of one core.

Run: ``python bench/footprint.py [--smoke] [--json FILE]`` (``bench/run.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

ROOM_FILE = benchlib.ROOMS / "fitted-room.yaml"
ROOM = "fitted-room"
GOAL_RSS_MB = 40.0
GOAL_CPU_PERCENT = 1.0
MB = 1024.0  # /proc reports kB


def one_run(folder: Path, window_s: int) -> dict[str, Any]:
    with benchlib.broker_and_collector(folder) as broker:
        listener = benchlib.Listener(
            broker, [benchlib.room_topic(ROOM, "status"), benchlib.room_topic(ROOM, "telemetry")]
        )
        spawned = time.perf_counter_ns()
        agent = benchlib.start_agent(broker, ROOM_FILE, folder / "agent", console=False)
        try:
            pid = agent.pid
            online = listener.wait_for(
                lambda h: h.topic.endswith("/status") and h.body.get("state") == "online",
                timeout=60,
            )
            startup_cpu_s = benchlib.proc_cpu_s(pid)
            startup_hwm = benchlib.proc_status(pid)["VmHWM"]
            listener.drain()
            rss: list[int] = []
            cpu0, w0 = benchlib.proc_cpu_s(pid), time.perf_counter()
            for second in range(window_s + 1):
                time.sleep(max(0.0, w0 + second - time.perf_counter()))
                if agent.poll() is not None:
                    raise benchlib.BenchError(f"the agent exited ({agent.returncode})")
                status = benchlib.proc_status(pid)
                rss.append(status["VmRSS"])
            cpu1, w1 = benchlib.proc_cpu_s(pid), time.perf_counter()
            pss = benchlib.proc_pss_kb(pid)
            threads = benchlib.proc_threads(pid)
            heard = listener.drain()
        finally:
            listener.close()
            code = benchlib.stop_process(agent)
    telemetry = sum(1 for h in heard if h.topic.endswith("/telemetry"))
    return {
        "window_s": round(w1 - w0, 3),
        "rss_max_mb": max(rss) / MB,
        "rss_final_mb": rss[-1] / MB,
        "rss_anon_final_mb": status.get("RssAnon", 0) / MB,
        "rss_file_final_mb": status.get("RssFile", 0) / MB,
        "pss_final_mb": None if pss is None else pss / MB,
        "hwm_mb": status["VmHWM"] / MB,
        "hwm_at_online_mb": startup_hwm / MB,
        "cpu_percent": 100.0 * (cpu1 - cpu0) / (w1 - w0),
        "cpu_s": round(cpu1 - cpu0, 3),
        "startup_s": (online.at_ns - spawned) / 1e9,
        "startup_cpu_s": startup_cpu_s,
        "threads": threads,
        "telemetry_per_s": telemetry / (w1 - w0),
        "rss_series_mb": [round(v / MB, 2) for v in rss],
        "exit_code": code,
    }


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": benchlib.percentile(ordered, 50),
        "p99": benchlib.percentile(ordered, 99),
        "min": ordered[0],
    }


def run(window_s: int, runs: int, folder: Path) -> dict[str, Any]:
    results = []
    for index in range(runs):
        benchlib.log(f"footprint: run {index + 1}/{runs}, {window_s} s window")
        results.append(one_run(folder / f"run-{index}", window_s))
    keys = ("rss_max_mb", "rss_final_mb", "pss_final_mb", "cpu_percent", "startup_s")
    return {
        "goal": {"rss_mb_below": GOAL_RSS_MB, "cpu_percent_below": GOAL_CPU_PERCENT},
        "window_s": window_s,
        "runs": runs,
        "summary": {k: _spread([r[k] for r in results if r[k] is not None]) for k in keys},
        "per_run": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one 5 s window")
    parser.add_argument("--window", type=int, help="seconds measured per run")
    parser.add_argument("--runs", type=int, help="independent runs (fresh processes each)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    window = args.window or (5 if args.smoke else 60)
    runs = args.runs or (1 if args.smoke else 3)
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-footprint-") as tmp:
        result = run(window, runs, Path(tmp))
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
