"""The collector's composition root: it builds the parts, starts them in order, stops them
in reverse, and wires their callbacks (docs/architecture.md, "The collector in parts").

    MqttLink -> Intake -> RoomBook (alerts published at once) -> Writer -> AckBook

Threads: paho's network thread runs the intake and the room book and publishes alerts; the
writer thread stores and acknowledges; APScheduler's thread ticks, runs periodic checks and
feeds systemd's watchdog; one delivery worker per notification channel; the HTTP thread of
/healthz and /metrics (and, with the web app, uvicorn's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from roomwatch.collector.ack_book import AckBook
from roomwatch.collector.alerts import AlertDesk
from roomwatch.collector.config import CollectorConfig, RoomRegistration
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.dead_letters import DeadLetterCaps, DeadRecord
from roomwatch.collector.delivery import Attempt, Dispatcher
from roomwatch.collector.intake import Intake
from roomwatch.collector.liveness import Beat, Heartbeat, stale
from roomwatch.collector.notices import notice_of
from roomwatch.collector.observability import Counters, Health, Observability
from roomwatch.collector.quarantine import Quarantine
from roomwatch.collector.recovery import Recovery
from roomwatch.collector.room_book import MemoryRoomBook, RoomSnapshot
from roomwatch.collector.storage import Store
from roomwatch.collector.writer import Attempts, Dead, Received, Steps, Writer
from roomwatch.core import rules, wire
from roomwatch.core.clock import Clock
from roomwatch.core.escalation import EscalationPolicy
from roomwatch.transport import MqttLink, systemd

log = logging.getLogger(__name__)

#: How far back a restarted collector reads episodes and faults to rebuild its room views.
REBUILD_DAYS = 7
#: The systemd watchdog is fed only while each part showed life within (seconds): the writer
#: (idle, it wakes every second), the rules tick (also at least 5 ticks), and a message
#: handler on paho's network thread (one message, however slow, takes less).
WRITER_STALE_S = 15.0
TICK_STALE_S = 10.0
HANDLER_STALE_S = 10.0

#: A periodic check that reads the database (the compliance deadlines, issue 7): the
#: conditions it finds now, per (site, room), among the alert types it owns.
PeriodicCheck = Callable[[datetime], dict[tuple[str, str], list[rules.Condition]]]


@dataclass(frozen=True, slots=True)
class Change:
    """What listeners (the web app's live board) hear: rooms whose state changed, and alert
    steps. Called on the thread that made the change: listeners must return at once."""

    rooms: frozenset[tuple[str, str]]
    transitions: tuple[rules.Transition, ...]


Listener = Callable[[Change], None]


class Collector:
    def __init__(self, config: CollectorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.counters = Counters()
        self.window = config.time_window
        self.listeners: list[Listener] = []
        self._checks: list[tuple[PeriodicCheck, frozenset[wire.AlertType], float]] = []
        self._scheduler = BackgroundScheduler(timezone="UTC")
        #: The rules tick's last sign of life, for the systemd watchdog.
        self._tick_beat = Beat()
        self.store = Store(make_engine(config.database_url), self.window)
        self.recovery = Recovery(self.store.engine, Quarantine(self.counters.quarantined))
        self.link = self._link()
        self.acks = AckBook(
            clock,
            self.counters,
            config.gap_grace_s,
            save=self.store.save_progress,
            publish=lambda t, p: self.link.publish(t, p, qos=1, retain=True),
        )
        self.writer = Writer(
            self.store,
            self.counters,
            config.batch_max,
            on_committed=self.acks.committed,
            on_idle=self._flush_acks,
            on_drain=lambda: self.acks.flush_and_wait(timeout=5),
            idle_wake_s=self._writer_wake_s,
        )
        self.intake = Intake(
            clock,
            self.counters,
            self.window,
            DeadLetterCaps(config.dead_letters_per_agent, config.dead_letters_total, {}),
            admitted=self._admitted,
            dead_lettered=self._dead_lettered,
            lag=lambda s: self.observability.ingest_lag.observe(s),
        )
        self.observability = Observability(
            self.counters,
            self.writer.depth,
            self.link.connected.is_set,
            self.health,
            self.link.takeover,
        )
        notify = config.notify
        self.dispatcher = (
            Dispatcher(notify.tiers, self._record_attempt, clock) if notify.tiers else None
        )
        self.desk = AlertDesk(
            lambda t, p: self.link.publish(t, p, qos=1),
            clock,
            EscalationPolicy(
                tiers=max(1, len(notify.tiers)),
                escalate_after_s=notify.escalate_after_s,
                repeat_every_s=notify.repeat_every_s,
            ),
            notify=self._deliver,
        )
        self.book = MemoryRoomBook(config, self.desk, self.counters)

    def _link(self) -> MqttLink:
        # Status is retained, and brokers give retained messages only to plain subscriptions:
        # every collector takes status itself (duplicates are dropped by id).
        share = self.config.share_group
        subscriptions = [
            wire.subscription(k, share=None if k is wire.Kind.STATUS else share)
            for k in wire.AGENT_KINDS
        ]
        return MqttLink(
            self.config.mqtt,
            f"roomwatch-{self.config.name}",
            subscriptions=subscriptions,
            on_message=self.on_message,
            bulk_io=True,
        )

    def _flush_acks(self) -> None:
        self.acks.flush(force=True)

    def _writer_wake_s(self) -> float | None:
        # Acks held back go out once the writer is idle this long (None: the writer's own
        # beat, which shows the watchdog it is alive).
        return self.acks.hold_s() if self.acks.pending else None

    # ---------------------------------------------------------------- control

    def open(self) -> None:
        """Everything but the network: schema, open alerts, marks, room views, writer."""
        migrate(self.store.engine)
        reads = self.recovery
        self.desk.load(reads.open_alerts())
        self.acks.load(reads.load_progress())
        self.intake.caps = DeadLetterCaps(
            self.config.dead_letters_per_agent,
            self.config.dead_letters_total,
            reads.dead_letter_counts(),
        )
        since = self.clock.now() - timedelta(days=REBUILD_DAYS)
        self.book.load(reads.recent_room_facts(since), reads.registered_rooms())
        if self.counters.quarantined:
            log.error(
                "started with %d unreadable row(s) quarantined (%s): see the errors above",
                sum(self.counters.quarantined.values()),
                ", ".join(f"{t}: {n}" for t, n in sorted(self.counters.quarantined.items())),
            )
        self.writer.start()
        if self.dispatcher is not None:
            self.dispatcher.start()

    def start(self, schedule: bool = True) -> None:
        """Open, connect, and tick every ``tick_s`` (``schedule=False``: the caller ticks)."""
        self.open()
        if self.config.http_port is not None:
            try:
                self.observability.serve(self.config.http_host, self.config.http_port)
            except OSError as exc:
                # Alerts matter more than metrics: say so loudly, and go on.
                log.error("cannot serve health/metrics on %s:%s: %s",
                          self.config.http_host, self.config.http_port, exc)  # fmt: skip
        self.link.start()
        if schedule:
            self._schedule()
        systemd.notify("READY=1")
        log.info(
            "collector %s started (database %s)",
            self.config.name,
            self.store.engine.url.render_as_string(),
        )

    def _schedule(self) -> None:
        every = {"trigger": "interval", "max_instances": 1, "coalesce": True}
        self._scheduler.add_job(self._tick_safely, seconds=self.config.tick_s, id="tick", **every)
        for n, (check, owned, every_s) in enumerate(self._checks):
            self._scheduler.add_job(
                self._check_safely, args=(check, owned), seconds=every_s, id=f"check-{n}", **every
            )
        heartbeat = systemd.watchdog_interval_s()
        if heartbeat is not None:
            self._scheduler.add_job(
                self.heartbeat().beat, "interval", seconds=heartbeat, id="watchdog"
            )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop in reverse: no ticks, no new messages, then flush what was received, then close."""
        systemd.notify("STOPPING=1")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self.observability.close()
        # Acks held back (ACK_EVERY_S) go out while the link can still carry them.
        self.writer.drain(timeout=10)
        self.link.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout=10)
        self.writer.stop(timeout=30)
        self.store.engine.dispose()

    # ----------------------------------------------------------- the hot path

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called on paho's thread for every message. Never raises."""
        self.intake.on_message(topic, payload)

    def _admitted(self, message: wire.Message, now: datetime) -> None:
        transitions = self.book.judge(message, now)
        self.writer.put(Received(message, now, transitions))
        self._tell(frozenset({(message.site, message.room)}), transitions)

    def _dead_lettered(self, record: DeadRecord, now: datetime) -> None:
        self.writer.put(Dead(record, now))

    def _steps(self, transitions: list[rules.Transition]) -> None:
        """Alert steps with no message behind them: stored, and told to the live pages."""
        if transitions:
            self.writer.put(Steps(transitions))
            self._tell(frozenset(), transitions)

    def _tick_safely(self) -> None:
        try:
            self.tick()
            self._tick_beat.now()
        except Exception:
            log.exception("tick failed; the schedule goes on")

    def tick(self) -> list[rules.Transition]:
        """Time passes: time limits, checkpoints, lapses and silences fall due."""
        transitions = self.book.tick(self.clock.now())
        self._steps(transitions)
        return transitions

    # -------------------------------------------- periodic checks (compliance, issue 7)

    def add_check(
        self, check: PeriodicCheck, owned: frozenset[wire.AlertType], every_s: float
    ) -> None:
        """Run ``check`` every ``every_s`` seconds once started (add it before start): what it
        finds is reconciled on the alert desk for the ``owned`` types, room by room; a room
        it leaves out has none of them (their open alerts resolve)."""
        self._checks.append((check, owned, every_s))

    @property
    def periodic_checks(self) -> tuple[tuple[PeriodicCheck, frozenset[wire.AlertType], float], ...]:
        """The checks added, with their types and interval (a caller that ticks runs them)."""
        return tuple(self._checks)

    def settle(self, timeout: float) -> bool:
        """Wait until everything received so far is stored, so a check reads it (the
        simulator, before it runs a check on its virtual clock). False: not in time. With
        no writer running (not opened, or stopped) there is nothing to wait for."""
        return self.writer.drain(timeout, acks=False)

    def run_check(
        self, check: PeriodicCheck, owned: frozenset[wire.AlertType]
    ) -> list[rules.Transition]:
        now = self.clock.now()
        transitions = self.book.reconcile_check(check(now), owned, now)
        self._steps(transitions)
        return transitions

    def _check_safely(self, check: PeriodicCheck, owned: frozenset[wire.AlertType]) -> None:
        try:
            self.run_check(check, owned)
        except Exception:
            log.exception("periodic check failed; the schedule goes on")

    def acknowledge(self, alert_id: str, by: str) -> rules.Transition:
        """A named user takes an open alert (AcknowledgeError if it is not open). Audited by
        the writer, in the transaction that stores the step (storage.audit_changes)."""
        transition = self.book.acknowledge(alert_id, by)
        self._steps([transition])
        return transition

    def _tell(self, rooms: frozenset[tuple[str, str]], transitions: list[rules.Transition]) -> None:
        if not self.listeners:
            return
        rooms = rooms | {(t.alert.site, t.alert.room) for t in transitions}
        change = Change(rooms, tuple(transitions))
        # A copy: the web server adds and removes its listener on its own thread.
        for listener in tuple(self.listeners):
            try:
                listener(change)
            except Exception:
                log.exception("a change listener failed; the collector goes on")

    # ------------------------------------------------------------- reading

    def room_registration(self, key: tuple[str, str]) -> RoomRegistration:
        """A registered room's settings, else the config file's, else none."""
        return self.book.registration(key)

    def room_snapshot(self, key: tuple[str, str]) -> RoomSnapshot | None:
        return self.book.snapshot(key)

    def room_snapshots(self) -> list[RoomSnapshot]:
        """Every room the collector has heard from, by site and room."""
        return [s for s in (self.book.snapshot(k) for k in self.book.rooms()) if s is not None]

    def open_alerts(self) -> list[rules.OpenAlert]:
        return self.book.open_alerts()

    def register_room(self, site: str, room: str, settings: RoomRegistration, by: str) -> None:
        """An administrator sets a room's profile and student band (stored, audited, and
        applied from the next evaluation on)."""
        self.store.register_room(site, room, settings, by, self.clock.now())
        self.book.register((site, room), settings)
        self._tell(frozenset({(site, room)}), [])

    # ---------------------------------------------------------- notification

    def _deliver(self, transition: rules.Transition) -> None:
        """Hand an alert step to the channels of its tier (when notify tiers are configured)."""
        if self.dispatcher is None:
            return
        notice = notice_of(transition)
        if notice is not None:
            self.dispatcher.submit(notice)

    def _record_attempt(self, attempt: Attempt) -> None:
        """Called on a delivery thread: the writer stores it with everything else."""
        if not attempt.ok:
            self.counters.delivery_failures += 1
        self.writer.put(Attempts([attempt]))

    # -------------------------------------------------------------- liveness

    def heartbeat(self) -> Heartbeat:
        """The checks that feed systemd's watchdog (collector/liveness.py)."""

        def network() -> str | None:
            if not self.link.network_alive():
                return "the MQTT network thread has stopped"
            since = self.intake.handling_since
            if since is not None and time.monotonic() - since > HANDLER_STALE_S:
                return f"a message handler has run for {time.monotonic() - since:.1f} s"
            return None

        def writer() -> str | None:
            if not self.writer.alive():
                return "the database writer has stopped"
            return stale("the database writer", self.writer.beat, WRITER_STALE_S)()

        tick_limit = max(TICK_STALE_S, 5 * self.config.tick_s)
        tick = stale("the rules tick", self._tick_beat, tick_limit)
        return Heartbeat({"network": network, "writer": writer, "tick": tick})

    def health(self) -> Health:
        """What /healthz reports: broker connection, writer thread, last database write."""
        reasons = []
        if not self.link.connected.is_set():
            reasons.append("not connected to the MQTT broker")
        if not self.writer.alive():
            reasons.append("the database writer has stopped")
        if self.counters.last_write_failed:
            reasons.append("the last database write failed (retrying)")
        if self.link.takeover.recent():
            reasons.append(
                f"the MQTT session was taken over within the last minute: another client "
                f"uses the client id {self.link.client_id}"
            )
        return Health(not reasons, reasons)
