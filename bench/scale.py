"""Scale: 2,000 simulated rooms at 1 Hz on one collector for 5 minutes; nothing lost, and how
long alerts take meanwhile.

Everything in its own process, on loopback: Mosquitto (tuned for load,
``benchlib.LOADED_CONF``), ``roomwatch collector`` (SQLite), ``--generators`` load generator
processes (``bench/loadgen.py``) that each simulate a share of the rooms: a retained online
``status`` per room first, then one telemetry message per room per second (valid wire v1,
each with its id and per-room sequence number), and every ``--trigger-every`` seconds per room
a telemetry message showing the room occupied with its door locked (the next message unlocks
it). That raises ``door_locked_while_occupied``; a paho subscriber in this process on
``roomwatch/v1/+/+/alerts`` times its ``raised`` step. The latency runs from the moment the
generator wrote the triggering message to its socket to the moment the subscriber's callback
has the alert (matched by room and ``raised_at``, which is the trigger's own ``ts``); both
clocks are ``perf_counter_ns`` (CLOCK_MONOTONIC, shared by the processes).

Nothing lost: afterwards the database holds exactly the telemetry sent (``message`` and
``telemetry`` rows), every room, and no dead letters; every trigger's alert arrived.

Run: ``python bench/scale.py [--smoke] [--rooms 2000] [--duration 300] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

GOAL_P99_MS = 100.0
SITE = "scale"


def _db_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:

        def one(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        return {
            "message_telemetry": one("SELECT count(*) FROM message WHERE kind = 'telemetry'"),
            "message_status": one("SELECT count(*) FROM message WHERE kind = 'status'"),
            "telemetry_rows": one("SELECT count(*) FROM telemetry"),
            "rooms": one("SELECT count(*) FROM room"),
            "agents": one("SELECT count(*) FROM agent"),
            "dead_letters": one("SELECT count(*) FROM dead_letter"),
            "alerts_raised": one(
                "SELECT count(*) FROM alert WHERE type = 'door_locked_while_occupied'"
            ),
        }


def one_run(
    folder: Path, rooms: int, duration: float, generators: int, trigger_every: float
) -> dict[str, Any]:
    http_port = benchlib.free_port()
    config = {"http_port": http_port, "telemetry_interval_s": 1}
    with benchlib.broker_and_collector(folder, nodelay=True, loaded=True, config=config) as broker:
        assert broker.collector is not None
        pid = broker.collector.pid
        listener = benchlib.Listener(broker, [f"roomwatch/v1/{SITE}/+/alerts"])
        try:
            per = rooms // generators
            start_ns = time.perf_counter_ns() + 2_000_000_000  # statuses go out first
            cpu_before = benchlib.proc_cpu_s(pid)
            started = []
            for g in range(generators):
                spec = {
                    "host": broker.host,
                    "port": broker.port,
                    "site": SITE,
                    "rooms": [f"room-{g * per + r:05d}" for r in range(per)],
                    "rate": per,  # each room once a second
                    "duration_s": duration,
                    "start_ns": start_ns,
                    "window": 1000,
                    "statuses": True,
                    "trigger_every_s": trigger_every,
                    "tag": f"s{g}",
                }
                started.append(benchlib.start_loadgen(spec, folder / "load", f"gen{g}"))
            outs = [benchlib.finish_loadgen(p, f, timeout=duration + 180) for p, f in started]
            sent = sum(o["sent"] for o in outs)
            statuses = sum(o["statuses"] for o in outs)
            cpu_s = benchlib.proc_cpu_s(pid) - cpu_before
            triggers = {(room, ts): at for o in outs for room, ts, at in o["triggers"]}

            def stored() -> float:
                try:
                    return benchlib.metrics(http_port).get("roomwatch_messages_stored_total", 0)
                except OSError:
                    return 0.0

            benchlib.wait_until(lambda: stored() >= sent + statuses, 120, 0.25)
            time.sleep(2)  # the last alerts on their way
            latencies: list[float] = []
            seen: set[tuple[str, str]] = set()
            for heard in listener.drain():
                body = heard.body
                if body.get("state") != "raised" or body.get("type") != (
                    "door_locked_while_occupied"
                ):
                    continue
                key = (str(body.get("room")), str(body.get("raised_at")))
                at = triggers.get(key)
                if at is not None and key not in seen:
                    seen.add(key)
                    latencies.append((heard.at_ns - at) / 1e6)
        finally:
            listener.close()
    counts = _db_counts(folder / "collector" / "collector.db")
    return {
        "rooms": rooms,
        "sent": sent,
        "statuses": statuses,
        "rate_msg_s": sent / duration,
        "collector_cpu_percent": 100 * cpu_s / duration,
        "triggers": len(triggers),
        "alerts_heard": len(seen),
        "latency_ms": latencies,
        "database": counts,
        "nothing_lost": (
            counts["message_telemetry"] == sent
            and counts["telemetry_rows"] == sent
            and counts["message_status"] == statuses
            and counts["rooms"] == rooms
            and counts["dead_letters"] == 0
            and len(seen) == len(triggers)
        ),
        "load_average_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="briefly, fewer rooms")
    parser.add_argument("--rooms", type=int, help="simulated rooms (default 2000)")
    parser.add_argument("--duration", type=float, help="seconds (default 300)")
    parser.add_argument("--runs", type=int, default=1, help="independent runs")
    parser.add_argument("--generators", type=int, default=4, help="load generator processes")
    parser.add_argument(
        "--trigger-every", type=float, default=60, help="seconds between a room's alerts"
    )
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    rooms = args.rooms or (200 if args.smoke else 2000)
    duration = args.duration or (8.0 if args.smoke else 300.0)
    trigger_every = 4.0 if args.smoke else args.trigger_every
    runs = []
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-scale-") as tmp:
        for index in range(args.runs):
            benchlib.log(f"scale: run {index + 1}/{args.runs}, {rooms} rooms, {duration:g} s")
            run = one_run(
                Path(tmp) / f"run-{index}", rooms, duration, args.generators, trigger_every
            )
            benchlib.log(
                f"scale: {run['sent']} telemetry, {run['alerts_heard']}/{run['triggers']} alerts, "
                f"nothing lost: {run['nothing_lost']}, collector CPU "
                f"{run['collector_cpu_percent']:.0f} %"
            )
            runs.append(run)
    result = {
        "rooms": rooms,
        "duration_s": duration,
        "trigger_every_s": trigger_every,
        "runs": args.runs,
        "per_run": [{k: v for k, v in r.items() if k != "latency_ms"} for r in runs],
        "trigger_to_alert": benchlib.latency_result([r["latency_ms"] for r in runs]),
        "nothing_lost": all(r["nothing_lost"] for r in runs),
        "goal": {"p99_ms_below": GOAL_P99_MS},
    }
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
