"""Alert latency, agent to subscriber, idle: a mock lock edge on an occupied room's agent to
the ``door_locked_while_occupied`` alert arriving at a plain paho subscriber.

Every part is real and in its own process: Mosquitto on loopback, ``roomwatch collector``
(the Collector, SQLite in a temporary folder), ``roomwatch agent --mock`` on the interlock
bench room (``bench/rooms/interlock-room.yaml``, 1 Hz sampling and telemetry), and this
process, which drives the agent's mock pins through its console (``door_lock on`` on stdin;
the agent's console thread calls ``drive()``) and subscribes to the room's ``alerts`` and
``telemetry`` topics. The time runs from just before the console line is written to the
moment the subscriber's callback sees the raised alert; the telemetry that carries the locked
door is timed too, which splits the path into agent -> broker and collector -> broker.

After each alert the lock is released and the bench waits for the alert's ``resolved`` step
(and a random 0-50 ms) before the next; one warm-up alert per run (the collector's first,
through cold code paths) is reported apart. It runs three times: idle with Mosquitto's
defaults (as Debian ships it, and as the tests run it); idle with ``set_tcp_nodelay true`` in
the broker's configuration (Nagle's algorithm off on the broker's sockets; the Roomwatch
clients already turn it off on theirs); and with that broker tuned for load
(``benchlib.LOADED_CONF``) while a load generator process (``bench/loadgen.py``) sends 5,000
telemetry messages a second from 500 other rooms to the same collector.

Run: ``python bench/alert_latency.py [--smoke] [--json FILE]`` (``bench/run.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

ROOM_FILE = benchlib.ROOMS / "interlock-room.yaml"
ROOM = "interlock-room"
ALERT = "door_locked_while_occupied"
TIMEOUT_S = 15.0


def _alert(state: str, alert_id: str | None = None) -> Any:
    def match(h: benchlib.Heard) -> bool:
        return (
            h.topic.endswith("/alerts")
            and h.body.get("type") == ALERT
            and h.body.get("state") == state
            and (alert_id is None or h.body.get("alert_id") == alert_id)
        )

    return match


def _telemetry(**fields: object) -> Any:
    def match(h: benchlib.Heard) -> bool:
        return h.topic.endswith("/telemetry") and all(h.body.get(k) == v for k, v in fields.items())

    return match


def _cycle(agent: Any, listener: benchlib.Listener) -> tuple[int, int]:
    """One lock edge: (edge -> telemetry with the lock, edge -> alert raised); then release
    the lock and wait for the alert's resolve."""
    listener.drain()  # telemetry stamped before the edge must not pass for its effect
    t0 = time.perf_counter_ns()
    benchlib.send_line(agent, "door_lock on")
    telemetry = listener.wait_for(_telemetry(door_locked=True), TIMEOUT_S)
    raised = listener.wait_for(_alert("raised"), TIMEOUT_S)
    benchlib.send_line(agent, "door_lock off")
    listener.wait_for(_alert("resolved", raised.body.get("alert_id")), TIMEOUT_S)
    return telemetry.at_ns - t0, raised.at_ns - t0


#: The "under load" variant: this much other telemetry (msg/s, from LOAD_ROOMS other rooms in
#: another site) goes to the collector throughout, from a load generator process.
LOAD_MSG_S = 5000
#: The smoke run's load: within what the collector stores on a loaded 2-core CI machine, so
#: the smoke shows the machinery works; the full run measures the 5,000 (issue 17).
SMOKE_LOAD_MSG_S = 1000
LOAD_ROOMS = 500


def _start_load(broker: benchlib.Mosquitto, folder: Path, rate: float) -> Any:
    spec = {
        "host": broker.host,
        "port": broker.port,
        "site": "load",
        "rooms": [f"room-{i:04d}" for i in range(LOAD_ROOMS)],
        "rate": rate,
        "duration_s": 3600,
        "window": 1000,
        "tag": "bg",
    }
    return benchlib.start_loadgen(spec, folder / "load", "background")


def one_run(folder: Path, alerts: int, seed: int, nodelay: bool, load: float = 0) -> dict[str, Any]:
    """Edge -> alert and edge -> telemetry (ns) of ``alerts`` alerts, after one warm-up, with
    ``load`` msg/s of other telemetry (0: none)."""
    rng = random.Random(seed)
    to_alert: list[int] = []
    to_telemetry: list[int] = []
    with benchlib.broker_and_collector(folder, nodelay, loaded=bool(load)) as broker:
        listener = benchlib.Listener(
            broker, [benchlib.room_topic(ROOM, kind) for kind in ("alerts", "telemetry", "ack")]
        )
        agent = benchlib.start_agent(broker, ROOM_FILE, folder / "agent", console=True)
        background = _start_load(broker, folder, load) if load else None
        try:
            # A student inside, the door closed: occupied, an episode open.
            benchlib.send_line(agent, "motion on")
            benchlib.send_line(agent, "door_closed on")
            occupied = listener.wait_for(_telemetry(occupied=True, door_closed=True), timeout=60)
            # The collector is up and has stored (and acknowledged) everything so far.
            seq = occupied.body["seq"]
            listener.wait_for(
                lambda h: h.topic.endswith("/ack") and h.body.get("seq", -1) >= seq, timeout=60
            )
            warm_up = _cycle(agent, listener)  # the collector's first alert: cold code paths
            for _ in range(alerts):
                time.sleep(rng.uniform(0, 0.050))
                telemetry, alert = _cycle(agent, listener)
                to_telemetry.append(telemetry)
                to_alert.append(alert)
        finally:
            if background is not None:
                benchlib.stop_process(background[0])
            listener.close()
            benchlib.stop_process(agent)
    return {"alert": to_alert, "telemetry": to_telemetry, "warm_up_alert": warm_up[1]}


def _variant(
    alerts: int, runs: int, folder: Path, nodelay: bool, load: float = 0
) -> dict[str, Any]:
    to_alert: list[list[float]] = []
    to_telemetry: list[list[float]] = []
    collector_share: list[list[float]] = []
    warm_up: list[float] = []
    for index in range(runs):
        name = "set_tcp_nodelay true" if nodelay else "Mosquitto defaults"
        name += f", {load:g} msg/s of other telemetry" if load else ""
        benchlib.log(f"alert latency ({name}): run {index + 1}/{runs}, {alerts} alerts")
        result = one_run(folder / f"run-{index}", alerts, seed=index, nodelay=nodelay, load=load)
        to_alert.append(benchlib.ns_to_ms(result["alert"]))
        to_telemetry.append(benchlib.ns_to_ms(result["telemetry"]))
        pairs = zip(result["alert"], result["telemetry"], strict=True)
        collector_share.append(benchlib.ns_to_ms(a - t for a, t in pairs))
        warm_up.append(result["warm_up_alert"] / 1e6)
    return {
        "broker_set_tcp_nodelay": nodelay,
        "other_telemetry_msg_s": load,
        "edge_to_alert": benchlib.latency_result(to_alert),
        "edge_to_telemetry": benchlib.latency_result(to_telemetry),
        "telemetry_to_alert": benchlib.latency_result(collector_share),
        "warm_up_alert_ms": warm_up,
    }


def run(alerts: int, runs: int, folder: Path, load: float = LOAD_MSG_S) -> dict[str, Any]:
    return {
        "alerts_per_run": alerts,
        "runs": runs,
        "mosquitto_defaults": _variant(alerts, runs, folder / "defaults", nodelay=False),
        "broker_nodelay": _variant(alerts, runs, folder / "nodelay", nodelay=True),
        "under_load": _variant(alerts, runs, folder / "load", nodelay=True, load=load),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few alerts, to see it works")
    parser.add_argument("--alerts", type=int, help="alerts per run")
    parser.add_argument("--runs", type=int, help="independent runs (fresh processes each)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    alerts = args.alerts or (3 if args.smoke else 100)
    runs = args.runs or (1 if args.smoke else 3)
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-alerts-") as tmp:
        result = run(alerts, runs, Path(tmp), SMOKE_LOAD_MSG_S if args.smoke else LOAD_MSG_S)
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
