"""Collector ingest: QoS 1 telemetry from many rooms into SQLite, sustained, nothing lost.

Everything in its own process, on loopback: Mosquitto (tuned for load, see
``benchlib.LOADED_CONF``), ``roomwatch collector`` (SQLite in a temporary folder, its metrics
on a free port), a bare ``mosquitto_sub -q 1`` on the same topics as the yardstick, and
``--generators`` load generators (``bench/loadgen.py``: valid wire-v1 telemetry, about 250
bytes, each message its own id and per-room sequence number) publishing as fast as the broker
acknowledges (``--rate 0``) or at a fixed total rate, for ``--duration`` seconds.

Measured per run:

* offered: messages the generators published (and the broker acknowledged) per second;
* ``mosquitto_sub``: messages it received per second, first to last;
* collector: messages stored per second, from the first publish until the database held every
  one (read from its ``/metrics`` every 0.25 s), and the rate within the publishing window;
* nothing lost: afterwards the database must hold exactly the messages sent, in both
  ``message`` and ``telemetry``, with no dead letters (checked with SQL, not the metrics).

Run: ``python bench/ingest.py [--smoke] [--runs 3] [--duration 60] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

MOSQUITTO_SUB = "mosquitto_sub"
GOAL_MSG_S = 10_000
GOAL_SHARE_OF_SUB = 0.5


def _stored(port: int) -> float:
    try:
        return benchlib.metrics(port).get("roomwatch_messages_stored_total", 0.0)
    except OSError:
        return 0.0


def _db_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:

        def one(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        return {
            "message_telemetry": one("SELECT count(*) FROM message WHERE kind = 'telemetry'"),
            "telemetry_rows": one("SELECT count(*) FROM telemetry"),
            "rooms": one("SELECT count(*) FROM room"),
            "dead_letters": one("SELECT count(*) FROM dead_letter"),
        }


def _sub_times(path: Path) -> tuple[int, float, float]:
    """How many messages mosquitto_sub printed, and the first and last arrival (wall clock)."""
    count, first, last = 0, 0.0, 0.0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            at = float(line)
            if count == 0:
                first = at
            last = at
            count += 1
    return count, first, last


def one_run(
    folder: Path, duration: float, generators: int, rooms_each: int, rate: float, batch_max: int
) -> dict[str, Any]:
    http_port = benchlib.free_port()
    config = {"http_port": http_port, "batch_max": batch_max}
    with benchlib.broker_and_collector(folder, nodelay=True, loaded=True, config=config) as broker:
        sub_out = folder / "mosquitto_sub.txt"
        with sub_out.open("wb") as out:
            sub = subprocess.Popen(
                [
                    MOSQUITTO_SUB,
                    *("-h", broker.host, "-p", str(broker.port), "-q", "1", "-i", "bench-sub"),
                    *("-t", "roomwatch/v1/+/+/telemetry", "-F", "%U"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            if not benchlib.wait_until(lambda: broker.logged("bench-sub", "telemetry"), 30):
                raise benchlib.BenchError("mosquitto_sub never subscribed")
            assert broker.collector is not None
            collector_pid = broker.collector.pid
            cpu_before = benchlib.proc_cpu_s(collector_pid)
            start_ns = time.perf_counter_ns() + 500_000_000
            start_wall = time.time() + 0.5
            started = []
            for g in range(generators):
                spec = {
                    "host": broker.host,
                    "port": broker.port,
                    "site": "bench",
                    "rooms": [f"g{g}-room-{r:04d}" for r in range(rooms_each)],
                    "rate": rate / generators if rate else 0,
                    "duration_s": duration,
                    "start_ns": start_ns,
                    "window": 1000,
                    "tag": f"i{g}",
                }
                started.append(benchlib.start_loadgen(spec, folder / "load", f"gen{g}"))
            timeline: list[tuple[float, float]] = []
            end_wall = start_wall + duration
            while time.time() < end_wall:  # the collector's progress, once a second
                time.sleep(1.0)
                timeline.append((round(time.time() - start_wall, 2), _stored(http_port)))
            in_window = _stored(http_port)
            outs = [benchlib.finish_loadgen(p, f, timeout=duration + 180) for p, f in started]
            sent = sum(o["sent"] for o in outs)
            first_ns = min(o["first_ns"] for o in outs)
            last_ns = max(o["last_ns"] for o in outs)
            # Until the database holds everything (or stops moving for 60 s).
            stored, moved_at = _stored(http_port), time.time()
            while stored < sent and time.time() - moved_at < 60:
                time.sleep(0.25)
                now = _stored(http_port)
                if now != stored:
                    stored, moved_at = now, time.time()
            all_stored_wall = time.time() if stored >= sent else float("nan")
            collector_cpu_s = benchlib.proc_cpu_s(collector_pid) - cpu_before
            benchlib.wait_until(lambda: _sub_times(sub_out)[0] >= sent, 60, 0.5)
        finally:
            benchlib.stop_process(sub)
        sub_count, sub_first, sub_last = _sub_times(sub_out)
    counts = _db_counts(folder / "collector" / "collector.db")
    log_lines = (folder / "collector" / "collector.log").read_text(errors="replace").splitlines()
    publish_s = (last_ns - first_ns) / 1e9
    collector_s = all_stored_wall - start_wall
    return {
        "sent": sent,
        "offered_msg_s": sent / publish_s,
        "generators": generators,
        "rooms": generators * rooms_each,
        "publish_s": publish_s,
        "all_acked_by_broker": all(o["all_acked"] for o in outs),
        "mosquitto_sub_received": sub_count,
        "mosquitto_sub_msg_s": sub_count / (sub_last - sub_first) if sub_last > sub_first else 0,
        "collector_stored_metric": stored,
        "collector_msg_s": sent / collector_s if collector_s == collector_s else 0.0,
        "collector_in_window_msg_s": in_window / duration,
        "collector_drain_after_window_s": collector_s - duration,
        "collector_timeline": timeline,
        # CPU the collector spent per message stored: its cost, whatever else ran.
        "collector_cpu_us_per_msg": collector_cpu_s / sent * 1e6 if sent else 0.0,
        "load_average_after": os.getloadavg()[0],
        "database": counts,
        "collector_log_lines": len(log_lines),
        "collector_log_head": log_lines[:5],
        "nothing_lost": (
            counts["message_telemetry"] == sent
            and counts["telemetry_rows"] == sent
            and counts["dead_letters"] == 0
            and sub_count == sent
        ),
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    runs = []
    for index in range(args.runs):
        benchlib.log(
            f"ingest: run {index + 1}/{args.runs}, {args.duration:g} s, "
            f"{args.generators} generators x {args.rooms} rooms"
        )
        result = one_run(
            folder / f"run-{index}",
            args.duration,
            args.generators,
            args.rooms,
            args.rate,
            args.batch_max,
        )
        benchlib.log(
            f"ingest: offered {result['offered_msg_s']:.0f}/s, mosquitto_sub "
            f"{result['mosquitto_sub_msg_s']:.0f}/s, collector {result['collector_msg_s']:.0f}/s "
            f"({result['collector_cpu_us_per_msg']:.0f} us CPU/msg), "
            f"nothing lost: {result['nothing_lost']}"
        )
        runs.append(result)
    ratio = [r["collector_msg_s"] / r["mosquitto_sub_msg_s"] for r in runs]
    return {
        "duration_s": args.duration,
        "runs": args.runs,
        "batch_max": args.batch_max,
        "rate": args.rate,
        "per_run": runs,
        "summary": {
            "offered_msg_s": benchlib.spread([r["offered_msg_s"] for r in runs]),
            "mosquitto_sub_msg_s": benchlib.spread([r["mosquitto_sub_msg_s"] for r in runs]),
            "collector_msg_s": benchlib.spread([r["collector_msg_s"] for r in runs]),
            "collector_in_window_msg_s": benchlib.spread(
                [r["collector_in_window_msg_s"] for r in runs]
            ),
            "collector_share_of_sub": benchlib.spread(ratio),
            "nothing_lost": all(r["nothing_lost"] for r in runs),
        },
        "goal": {"msg_s_at_least": GOAL_MSG_S, "share_of_sub_at_least": GOAL_SHARE_OF_SUB},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, to see it works")
    parser.add_argument("--runs", type=int, help="independent runs (fresh processes each)")
    parser.add_argument("--duration", type=float, help="seconds of publishing per run")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--rooms", type=int, default=100, help="rooms per generator")
    parser.add_argument("--rate", type=float, default=0, help="total msg/s (0: flat out)")
    parser.add_argument("--batch-max", type=int, default=500, help="collector batch_max")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, db)")
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.smoke else 3)
    args.duration = args.duration or (3.0 if args.smoke else 60.0)
    if args.smoke and not args.rate:
        args.rate = 3000.0  # CI: a short paced run, not a backlog to drain
    if args.keep:
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="roomwatch-bench-ingest-") as tmp:
            result = run(args, Path(tmp))
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
