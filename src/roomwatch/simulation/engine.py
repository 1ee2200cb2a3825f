"""Run a scenario on the real programs, one virtual second at a time.

Each step: move the one :class:`VirtualClock`, apply the scenario's faults and
inputs, let every agent sample and tick, wait (on the collector's tap, never a
sleep) until the collector has received everything the agents published, then
tick the collector, and run the periodic checks ``roomwatch collector`` runs
(parent notification, record completeness, frequent and repeated use) when
their interval has passed on the virtual clock, once the collector has stored
what it received. The clock never moves while a message is on its way, so
every run sees the same order of events and gives the same result.

``speed`` paces the steps to real time (the demo); without it the simulation
runs as fast as the machine allows.
"""

from __future__ import annotations

import logging
import math
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from roomwatch.collector.config import CollectorConfig, RoomRegistration
from roomwatch.collector.service import Collector, PeriodicCheck
from roomwatch.compliance.jobs import attach_checks
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.clock import VirtualClock
from roomwatch.core.wire import AlertType
from roomwatch.firmware_config import MqttSettings
from roomwatch.simulation.report import Result, read_result
from roomwatch.simulation.room import SimRoom
from roomwatch.simulation.scenario import Fault, FaultKind, Scenario, Step
from roomwatch.simulation.tap import SimCollector, SimulationError, Tap, wait_for
from roomwatch.transport.client import MqttLink
from roomwatch.transport.embedded_broker import EmbeddedBroker

log = logging.getLogger(__name__)

#: A scenario starts here (a Monday morning) unless it says ``start``, so episode and alert
#: ids repeat run to run.
SCENARIO_START = datetime.fromisoformat("2026-01-05T08:00:00+00:00")
#: Real seconds to wait for something the system always does (connect, deliver) before failing.
PATIENCE_S = 30.0
STEP_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Options:
    """How to run: as fast as possible into a temporary folder (the default), or paced."""

    speed: float | None = None  # real-time factor; None: as fast as possible
    repeat: bool = False  # start the scenario over at its end (the demo's days)
    start: datetime | None = None  # None: the scenario's ``start``, else SCENARIO_START
    # The sites' school calendar (deadlines): UTC, Mon-Fri, the day ends 15:30, so a
    # scenario gives the same result on every machine.
    calendar: SchoolCalendar = field(default_factory=SchoolCalendar)
    workdir: Path | None = None  # agents' state and the database; default: a temporary folder
    database_url: str | None = None
    broker_port: int | None = None
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    collector_name: str = "simulator"
    stop: threading.Event | None = None  # set it to end a paced run early (Ctrl-C)
    on_ready: Callable[[], None] | None = None  # everything is up; the clock starts
    # Called with each collector started (the demo serves its web app beside it); what it
    # returns is called before that collector stops.
    on_collector: Callable[[Collector], Callable[[], None] | None] | None = None


@dataclass
class _Check:
    """A periodic check of the collector and when it next runs on the virtual clock."""

    check: PeriodicCheck
    owned: frozenset[AlertType]
    every_s: float
    next_at: datetime


@dataclass(frozen=True, order=True)
class _Due:
    at: float
    phase: int  # at one instant: faults end, then faults begin, then steps
    index: int
    item: Step | Fault


def _timeline(scenario: Scenario, repeat: bool) -> Iterator[_Due]:
    base = sorted(
        [_Due(f.end, 0, i, f) for i, f in enumerate(scenario.faults) if f.duration_s > 0]
        + [_Due(f.at, 1, i, f) for i, f in enumerate(scenario.faults)]
        + [_Due(s.at, 2, i, s) for i, s in enumerate(scenario.steps)]
    )
    cycle = 0
    while True:
        offset = cycle * scenario.duration_s
        for due in base:
            # A fault that runs past the end is cut short there.
            yield _Due(min(due.at, scenario.duration_s) + offset, due.phase, due.index, due.item)
        if not repeat:
            return
        cycle += 1


class Simulation:
    def __init__(self, scenario: Scenario, options: Options | None = None) -> None:
        self.scenario = scenario
        self.options = options or Options()
        self.start = self.options.start or scenario.start or SCENARIO_START
        self.clock = VirtualClock(self.start)
        self.tap = Tap()
        self.stop = self.options.stop or threading.Event()
        self._woken = threading.Event()  # never set: a wait that only polls a state
        self.broker: EmbeddedBroker | None = None
        self.collector: SimCollector | None = None
        self._collector_added: Callable[[], None] | None = None
        self.rooms: dict[str, SimRoom] = {}
        self._expected_statuses: dict[tuple[str, str], int] = {}
        self._retained: set[tuple[str, str]] = set()  # rooms with a status kept on the broker
        self._restart_collector_at: float | None = None
        self._checks: list[_Check] = []

    # ---------------------------------------------------------------- run

    def run(self, report: bool = True) -> Result | None:
        """Play the scenario to its end (or until ``stop``); the result read from the store."""
        with ExitStack() as stack:
            workdir = self.options.workdir
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rw-sim-")))
            self._workdir = workdir
            port = self.options.broker_port or free_port()
            self.mqtt = MqttSettings(host="127.0.0.1", port=port, keepalive_s=60)
            self.database_url = self.options.database_url or f"sqlite:///{workdir / 'collector.db'}"
            stack.callback(self._shutdown)
            self._start_broker()
            self._start_collector()
            for spec in self.scenario.rooms:
                room = SimRoom(
                    spec, self.clock, self.mqtt, workdir / "agents" / spec.site / spec.id
                )
                self.rooms[spec.id] = room
                self._start_agent(room)
            self._sync()
            if self.options.on_ready is not None:
                self.options.on_ready()
            self._play()
            if self.collector is None:
                self._start_collector()  # a restart still pending at the end
            self._quiesce()
            self._stop_collector()
            if not report:
                return None
            return read_result(self.database_url, self.start, self.rooms.values())

    def _play(self) -> None:
        timeline = _timeline(self.scenario, self.options.repeat)
        upcoming = next(timeline, None)
        started = time.monotonic()
        t = 0.0
        end = math.inf if self.options.repeat else self.scenario.duration_s
        while t <= end and not self.stop.is_set():
            self._advance_to(t)
            while upcoming is not None and upcoming.at <= t:
                self._apply(upcoming)
                upcoming = next(timeline, None)
            if self._restart_collector_at is not None and self._restart_collector_at <= t:
                self._restart_collector_at = None
                self._start_collector()
            for room in self.rooms.values():
                room.tick()
            self._sync()
            if self.collector is not None:
                self.collector.tick()
                self._run_due_checks()
            if self.options.speed:
                self.stop.wait(max(0.0, started + t / self.options.speed - time.monotonic()))
            following = (math.floor(t / STEP_S) + 1) * STEP_S  # the next whole step
            if upcoming is not None and t < upcoming.at < following:
                following = upcoming.at  # a step or fault between two ticks: stop there too
            if t < end < following:
                following = end
            t = following

    def _advance_to(self, t: float) -> None:
        now = self.start + timedelta(seconds=t)
        gap = (now - self.clock.now()).total_seconds()
        if gap > 0:
            self.clock.advance(gap)

    def _run_due_checks(self) -> None:
        """The collector's periodic checks whose interval has passed, as its scheduler runs
        them (first one interval after the collector started), on what it has stored."""
        assert self.collector is not None
        now = self.clock.now()
        due = [c for c in self._checks if c.next_at <= now]
        if not due:
            return
        if not self.collector.settle(PATIENCE_S):
            raise SimulationError(f"the collector did not store its queue within {PATIENCE_S:g} s")
        for c in due:
            self.collector.run_check(c.check, c.owned)
            while c.next_at <= now:  # a run missed is not run twice (coalesce, as in production)
                c.next_at += timedelta(seconds=c.every_s)

    # -------------------------------------------------------------- faults

    def _apply(self, due: _Due) -> None:
        item = due.item
        if item.note and due.phase != 0:
            log.info("%s: %s", getattr(item, "room", None) or "everywhere", item.note)
        if isinstance(item, Step):
            room = self.rooms[item.room]
            if item.set is not None:
                room.set(item.set)
            if item.press is not None:
                room.press()
            return
        ending = due.phase == 0
        log.info(
            "%s%s %s",
            item.kind.value,
            f" ({item.room})" if item.room else "",
            "ends" if ending else "begins",
        )
        match item.kind:
            case FaultKind.BROKER_DOWN:
                self._broker_back() if ending else self._broker_down()
            case FaultKind.AGENT_CRASH:
                assert item.room is not None
                room = self.rooms[item.room]
                self._start_agent(room) if ending else self._crash(room)
            case FaultKind.COLLECTOR_RESTART:
                if not ending:
                    self._quiesce()
                    self._stop_collector()
                    if item.duration_s == 0:
                        self._start_collector()
                    else:
                        self._restart_collector_at = due.at + item.duration_s
            case FaultKind.SENSOR_FAULT:
                assert item.room is not None and item.sensor is not None
                self.rooms[item.room].sensor_fault(item.sensor, not ending)
            case FaultKind.STUCK:
                assert item.room is not None and item.sensor is not None
                self.rooms[item.room].stuck(item.sensor, not ending)

    def _broker_down(self) -> None:
        self._quiesce()
        assert self.broker is not None
        self.broker.stop()
        self.broker = None
        self._retained.clear()

    def _broker_back(self) -> None:
        # Every client reconnects in a fixed order (the collector first), not when paho's
        # backoff says: an agent replaying before the collector subscribed would lose messages.
        links = self._links()
        with ThreadPoolExecutor(max_workers=len(links)) as pool:
            list(pool.map(lambda link: link.client.loop_stop(), links))
        self._start_broker()
        if self.collector is not None:
            self._reconnect(self.collector.link)
            self._subscribed(self.collector.link, "the collector")
        for room in self._running():
            assert room.service is not None
            self._expect_status(room)
            self._reconnect(room.service.link)
            # Connected means the agent asked for telemetry at its next tick: that tick is
            # the next step's, in every run.
            self._subscribed(room.service.link, f"the agent of {room.spec.id}")

    def _reconnect(self, link: MqttLink) -> None:
        try:
            link.client.reconnect()
        except OSError as exc:
            raise SimulationError(f"{link.client_id} could not reconnect: {exc}") from None
        link.client._reset_sockets(sockpair_only=True)  # loop_start makes a new pair; paho
        link.client.loop_start()  # would leave the old one open

    def _crash(self, room: SimRoom) -> None:
        self._quiesce()
        room.crash()
        if self.broker is not None:
            self._retained.add(room.key)
            self._expected_statuses[room.key] = self._expected_statuses.get(room.key, 0) + 1

    # ----------------------------------------------------------- the parts

    def _start_broker(self) -> None:
        broker = EmbeddedBroker(self.mqtt.host, self.mqtt.port)
        try:
            broker.start()
        except Exception:
            broker.stop()
            raise
        self.broker = broker

    def _stop_collector(self) -> None:
        assert self.collector is not None
        added, self._collector_added = self._collector_added, None
        try:
            if added is not None:
                added()
        finally:
            self.collector.stop()
            self.collector = None

    def _start_collector(self) -> None:
        # Every running agent has handed all it holds to the broker (which drops what no one
        # is subscribed to): no message is half-way when the collector arrives.
        for room in self._running():
            assert room.service is not None
            sender = room.service.sender
            wait_for(
                lambda sender=sender, room=room: sender.cursor >= room.last_seq,  # type: ignore[misc]
                PATIENCE_S,
                f"{room.spec.id}'s outbox to be sent",
                self._woken,
            )
        config = CollectorConfig(
            name=self.options.collector_name,
            mqtt=self.mqtt,
            database_url=self.database_url,
            http_host=self.options.http_host,
            http_port=self.options.http_port,
            rooms={
                f"{r.site}/{r.id}": RoomRegistration(profile=r.profile, student_band=r.student_band)
                for r in self.scenario.rooms
            },
            school_calendar=self.options.calendar,
        )
        collector = SimCollector(config, self.clock, self.tap)
        attach_checks(collector, config)  # what `roomwatch collector` runs (compliance/jobs.py)
        collector.start(schedule=False)
        self.collector = collector
        started = self.clock.now()
        self._checks = [
            _Check(check, owned, every_s, started + timedelta(seconds=every_s))
            for check, owned, every_s in collector.periodic_checks
        ]
        if self.options.on_collector is not None:
            self._collector_added = self.options.on_collector(collector)
        self._subscribed(collector.link, "the collector")
        # It is told each retained status again (first), and must hear everything it missed.
        for key in self._retained:
            self._expected_statuses[key] = self._expected_statuses.get(key, 0) + 1
        self.tap.wait(self._statuses_in, PATIENCE_S, lambda: self._missing({}))
        for room in self._running():
            assert room.service is not None
            room.service.sender.replay()
        self._sync()

    def _start_agent(self, room: SimRoom) -> None:
        service = room.start()
        self._subscribed(service.link, f"the agent of {room.spec.id}")
        self._expect_status(room)
        self._sync()

    def _expect_status(self, room: SimRoom) -> None:
        """An online status is on its way to the collector (kept by the broker too)."""
        self._retained.add(room.key)
        if self.collector is not None:
            self._expected_statuses[room.key] = self._expected_statuses.get(room.key, 0) + 1

    def _subscribed(self, link: MqttLink, who: str) -> None:
        if not link.subscribed.wait(PATIENCE_S):
            raise SimulationError(f"{who} did not connect to the broker within {PATIENCE_S:g} s")

    def _running(self) -> list[SimRoom]:
        return [r for r in self.rooms.values() if r.running]

    def _links(self) -> list[MqttLink]:
        links = [r.service.link for r in self._running() if r.service is not None]
        if self.collector is not None:
            links.append(self.collector.link)
        return links

    # ----------------------------------------------------------- waiting

    def _targets(self) -> dict[tuple[str, str], int]:
        return {room.key: room.last_seq for room in self._running()}

    def _statuses_in(self) -> bool:
        return all(self.tap.statuses(k) >= n for k, n in self._expected_statuses.items())

    def _delivered(self, targets: dict[tuple[str, str], int]) -> bool:
        if any(self.tap.upto(key) < seq for key, seq in targets.items()):
            return False
        return self._statuses_in()

    def _missing(self, targets: dict[tuple[str, str], int]) -> str:
        lines = [f"{k[1]}: received up to {self.tap.upto(k)} of {n}" for k, n in targets.items()]
        lines += [
            f"{k[1]}: {self.tap.statuses(k)} of {n} status message(s)"
            for k, n in self._expected_statuses.items()
        ]
        return "the collector to receive everything published (" + "; ".join(lines) + ")"

    def _sync(self) -> None:
        """Wait until the collector has received everything the agents published."""
        if self.broker is None or self.collector is None:
            return
        targets = self._targets()
        self.tap.wait(lambda: self._delivered(targets), PATIENCE_S, lambda: self._missing(targets))

    def _quiesce(self) -> None:
        """Also wait until every agent heard that the collector stored it all (the ack),
        so what follows a fault never depends on how far an ack had got."""
        self._sync()
        if self.broker is None or self.collector is None:
            return
        for room in self._running():
            wait_for(
                lambda room=room: room.acked >= room.last_seq,  # type: ignore[misc]
                PATIENCE_S,
                f"the collector to acknowledge {room.spec.id}'s messages",
                self._woken,
            )

    # ------------------------------------------------------------ the end

    def _shutdown(self) -> None:
        """Stop whatever still runs (also after an error): collector, agents, broker."""
        if self.collector is not None:
            try:
                self._stop_collector()
            except Exception:
                log.exception("stopping the collector failed")
            self.collector = None
        for room in self.rooms.values():
            try:
                room.stop()
            except Exception:
                log.exception("stopping the agent of %s failed", room.spec.id)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def simulate(scenario: Scenario, options: Options | None = None) -> Result:
    result = Simulation(scenario, options).run()
    assert result is not None
    return result
