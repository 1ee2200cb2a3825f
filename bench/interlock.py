"""Interlock latency: a mock input edge to the output pin's change, in a live AgentService.

Two measurements, each over thousands of edges:

* ``permit_withdrawal``: the room is positively empty and the permit granted (the permit
  relay's enable line high, its watchdog fed); the PIR line rises; time until the permit line
  goes low.
* ``lock_alarm``: the room is occupied (PIR on, door closed); the lock contact closes; time
  until the sounder line goes high.

The agent is the real :class:`AgentService` (its APScheduler ticking and sampling at 1 Hz,
telemetry every second, the on-disk outbox, paho connected to a real Mosquitto on loopback,
a real collector in its own process acknowledging) on gpiozero's MockFactory, in this process.
The time is taken just before :func:`roomwatch.hardware.gpio.drive` and by a hook on the
output pin that stamps ``perf_counter_ns()`` the moment its state changes. On mock pins the
edge handler runs synchronously in the thread that drives the pin (on a Pi it runs on
gpiozero's edge thread), so this is the agent's own reaction time: lock waits (a tick or a
telemetry write holding the agent's lock), the state machine step and the output write.

To grant the permit again after each withdrawal the room must be empty for the hold and the
debounce; the bench's clock (the wall clock plus the time skipped) skips those seconds instead
of sleeping them. Between samples it sleeps a random 0-20 ms, so edges land at every phase
of the 1 Hz tick and telemetry.

Run: ``python bench/interlock.py [--smoke] [--json FILE]`` (``bench/run.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib
from gpiozero.pins.mock import MockFactory, MockPin

from roomwatch.core.room import Input
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, load_model
from roomwatch.hardware.gpio import BinaryInput, drive
from roomwatch.hardware.mock_environment import MockEnvironment

ROOM_FILE = benchlib.ROOMS / "interlock-room.yaml"
GOAL_P99_MS = 10.0


class TimedPin(MockPin):  # type: ignore[misc]
    """A mock pin that stamps ``perf_counter_ns()`` on every change of its state."""

    def __init__(self, factory: Any, info: Any) -> None:
        self.changes: list[tuple[int, bool]] = []
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self.changes.append((time.perf_counter_ns(), bool(value)))
        return changed


class SkipClock:
    """The wall clock plus the seconds the bench has skipped (hold times expire at once)."""

    def __init__(self) -> None:
        self._skipped = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._skipped

    def skip(self, seconds: float) -> None:
        with self._lock:
            self._skipped += timedelta(seconds=seconds)


class Rig:
    """One AgentService on timed mock pins, connected to the bench's Mosquitto."""

    def __init__(self, broker: benchlib.Mosquitto, folder: Path, seed: int) -> None:
        config = load_model(ROOM_FILE, AgentConfig)
        self.config = config.model_copy(
            update={"mqtt": config.mqtt.with_broker_url(broker.url), "state_dir": folder / "state"}
        )
        self.clock = SkipClock()
        self.factory = MockFactory(pin_class=TimedPin)
        environment = MockEnvironment(self.config.sensors, folder / "w1")
        self.service = AgentService(self.config, self.clock, self.factory, environment=environment)
        self.agent = self.service.agent
        devices = self.service.devices
        assert devices.lock_permit is not None and devices.sounder is not None
        self.permit = devices.lock_permit
        self.permit_pin = self._pin(self.config.outputs.lock_permit)
        self.sounder_pin = self._pin(self.config.outputs.sounder)
        self.inputs: dict[Input, BinaryInput] = devices.inputs
        self.rng = random.Random(seed)
        timing = self.config.timing
        self.skip_s = max(timing.occupancy_hold_s, timing.empty_debounce_s) + 0.01

    def _pin(self, output: Any) -> TimedPin:
        pin = self.factory.pin(output.pin)
        assert isinstance(pin, TimedPin)
        return pin

    def start(self) -> None:
        self.service.start()
        link = self.service.link
        if not link.subscribed.wait(20):
            raise benchlib.BenchError("the agent did not connect to Mosquitto")
        # The whole chain is up once the collector has acknowledged something.
        if not benchlib.wait_until(lambda: self.service.outbox.acked >= 0, timeout=30):
            raise benchlib.BenchError("the collector never acknowledged the agent's messages")

    def stop(self) -> None:
        self.service.stop()

    def set(self, name: Input, active: bool) -> None:
        drive(self.inputs[name], active)

    def pause(self) -> None:
        time.sleep(self.rng.uniform(0, 0.020))

    # ----------------------------------------------------------- permit withdrawal

    def _grant(self) -> None:
        """Bring the room to positively empty: the permit granted and its line high."""
        for _ in range(40):
            if self.agent.state.permit and self.permit_pin.state:
                return
            self.clock.skip(self.skip_s)  # the hold and the empty debounce pass at once
            self.agent.tick()
        raise benchlib.BenchError(f"the permit was never granted: {self.agent.state}")

    def permit_withdrawal(self, samples: int) -> tuple[list[int], list[int], int]:
        """(edge -> permit line low, edge -> drive() returned, samples discarded: the line
        was not high at the edge, or its first change after it was not the fall)."""
        self.set(Input.DOOR_CLOSED, False)
        self.set(Input.DOOR_LOCK, False)
        self.set(Input.MOTION, False)
        to_output: list[int] = []
        to_return: list[int] = []
        discarded = 0
        while len(to_output) < samples:
            self._grant()
            mark = len(self.permit_pin.changes)
            t0 = time.perf_counter_ns()
            self.set(Input.MOTION, True)
            t1 = time.perf_counter_ns()
            if self.permit.is_on or self.agent.state.permit:
                raise benchlib.BenchError("motion did not withdraw the permit")
            changes = self.permit_pin.changes[mark:]
            if not changes or changes[0][1]:
                discarded += 1
            else:
                to_output.append(changes[0][0] - t0)
                to_return.append(t1 - t0)
            self.set(Input.MOTION, False)
            self.pause()
        return to_output, to_return, discarded

    # ------------------------------------------------------------------ lock alarm

    def lock_alarm(self, samples: int) -> tuple[list[int], list[int]]:
        """(lock edge -> sounder line high, lock edge -> drive() returned)."""
        self.set(Input.MOTION, True)  # a student inside, door closed: occupied and sealed
        self.set(Input.DOOR_CLOSED, True)
        to_output: list[int] = []
        to_return: list[int] = []
        for _ in range(samples):
            if self.sounder_pin.state:
                raise benchlib.BenchError("the sounder is already on before the lock edge")
            mark = len(self.sounder_pin.changes)
            t0 = time.perf_counter_ns()
            self.set(Input.DOOR_LOCK, True)
            t1 = time.perf_counter_ns()
            rising = [at for at, high in self.sounder_pin.changes[mark:] if high]
            if not rising or self.agent.indication.get("sounder") != "on" or self.permit.is_on:
                raise benchlib.BenchError(f"no lock alarm: {self.agent.indication}")
            to_output.append(rising[0] - t0)
            to_return.append(t1 - t0)
            self.set(Input.DOOR_LOCK, False)  # seen open: the alarm stops
            self.pause()
        self.set(Input.DOOR_CLOSED, False)
        self.set(Input.MOTION, False)
        return to_output, to_return


def _setup_logging(folder: Path) -> None:
    """As the ``roomwatch`` command does (INFO), but into a file."""
    logging.basicConfig(
        level=logging.INFO,
        filename=folder / "agent.log",
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for name in ("amqtt", "transitions", "alembic", "roomwatch.transport.client.paho"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run(samples: int, runs: int, folder: Path) -> dict[str, Any]:
    _setup_logging(folder)
    withdrawal: list[list[int]] = []
    withdrawal_return: list[list[int]] = []
    alarm: list[list[int]] = []
    alarm_return: list[list[int]] = []
    discarded = 0
    for index in range(runs):
        benchlib.log(f"interlock: run {index + 1}/{runs}, {samples} edges of each kind")
        run_folder = folder / f"run-{index}"
        with benchlib.broker_and_collector(run_folder) as broker:
            rig = Rig(broker, run_folder, seed=index)
            rig.start()
            try:
                out, ret, dropped = rig.permit_withdrawal(samples)
                withdrawal.append(out)
                withdrawal_return.append(ret)
                discarded += dropped
                out, ret = rig.lock_alarm(samples)
                alarm.append(out)
                alarm_return.append(ret)
            finally:
                rig.stop()
    ms = benchlib.ns_to_ms
    return {
        "goal": {"p99_ms_below": GOAL_P99_MS},
        "samples_per_run": samples,
        "permit_withdrawal": {
            "edge_to_output": benchlib.latency_result([ms(r) for r in withdrawal]),
            "edge_to_drive_return": benchlib.latency_result([ms(r) for r in withdrawal_return]),
            "discarded": discarded,
        },
        "lock_alarm": {
            "edge_to_output": benchlib.latency_result([ms(r) for r in alarm]),
            "edge_to_drive_return": benchlib.latency_result([ms(r) for r in alarm_return]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few edges, to see it works")
    parser.add_argument("--samples", type=int, help="edges of each kind per run")
    parser.add_argument("--runs", type=int, help="independent runs (fresh agent each)")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args()
    samples = args.samples or (25 if args.smoke else 1000)
    runs = args.runs or (1 if args.smoke else 3)
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-interlock-") as tmp:
        result = run(samples, runs, Path(tmp))
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
