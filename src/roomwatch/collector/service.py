"""The collector's composition root: MQTT in, rules and alerts at once, storage in batches.

Threads and why:

* paho's network thread decodes each message, runs the pure rules and
  publishes any alert straight away: an alert never waits for a commit;
* one writer thread stores messages, alert steps and dead letters in
  batches, retrying (and saying why) when the database fails.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from roomwatch.collector.alerts import AlertDesk
from roomwatch.collector.config import CollectorConfig, RoomRegistration
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.dead_letters import DeadLetterCaps, DeadRecord, shrink
from roomwatch.collector.delivery import Attempt, Dispatcher, Notification
from roomwatch.collector.liveness import Beat, Heartbeat, forgive, stale, stall_of
from roomwatch.collector.models import DeliveryAttempt
from roomwatch.collector.observability import Counters, Health, Observability
from roomwatch.collector.quarantine import Quarantine
from roomwatch.collector.storage import Store
from roomwatch.core import rules, wire
from roomwatch.core.claimed_time import judge, skew_conditions
from roomwatch.core.clock import Clock
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.escalation import EscalationPolicy
from roomwatch.core.policy import PolicyProfile, ProfileError, StudentBand, load_profile
from roomwatch.core.room_view import ROOM_TYPES, RoomView, conditions, observe
from roomwatch.core.sequence import SeqTracker
from roomwatch.transport import MqttLink, systemd

log = logging.getLogger(__name__)

SEEN_IDS_KEPT = 200_000
#: The writer gathers a batch for at most this long after its first item.
BATCH_LINGER_S = 0.05
#: At most one ack per agent this often (the rest wait for the writer to be idle).
ACK_EVERY_S = 0.5
#: How long a thread may hold the GIL while another waits (CPython's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005
#: How far back a restarted collector reads episodes and faults to rebuild its room views.
REBUILD_DAYS = 7
#: The systemd watchdog is fed only while each part showed life within (seconds): the writer
#: (idle, it wakes every WRITER_BEAT_S), the rules tick (also at least 5 ticks), and a
#: message handler on paho's network thread (one message, however slow, takes less).
WRITER_STALE_S = 15.0
WRITER_BEAT_S = 1.0
TICK_STALE_S = 10.0
HANDLER_STALE_S = 10.0


#: A batch the database refuses this many times in a row for its content is written item by
#: item (a race with another collector over the same ids resolves on the first retry).
ISOLATE_AFTER = 3


def _refused_for_content(exc: Exception) -> bool:
    """Whether the database refused the rows (a constraint, a value), not failed itself."""
    return isinstance(exc, IntegrityError | DataError) or (
        isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)
    )


class _SwitchInterval:
    """``sys.setswitchinterval`` is process-wide (the web app and tests share the process):
    set while any collector's writer runs, put back as it was when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = 0.0

    def hold(self) -> None:
        with self._lock:
            if self._users == 0:
                self._before = sys.getswitchinterval()
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                sys.setswitchinterval(self._before)


_SWITCH_INTERVAL = _SwitchInterval()

#: A periodic check that reads the database (the compliance deadlines, issue 7): the
#: conditions it finds now, per (site, room), among the alert types it owns.
PeriodicCheck = Callable[[datetime], dict[tuple[str, str], list[rules.Condition]]]


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """One room as the collector sees it now, with the rules that apply to it."""

    view: RoomView
    profile: PolicyProfile
    registration: RoomRegistration
    limits: rules.EnvironmentLimits
    watch: WatchRules
    alerts: list[rules.OpenAlert]


@dataclass(frozen=True, slots=True)
class Change:
    """What listeners (the web app's live board) hear: rooms whose state changed, and alert
    steps. Called on the thread that made the change: listeners must return at once."""

    rooms: frozenset[tuple[str, str]]
    transitions: tuple[rules.Transition, ...]


Listener = Callable[[Change], None]


@dataclass(frozen=True, slots=True)
class _Valid:
    message: wire.Message
    received_at: datetime
    transitions: list[rules.Transition]


@dataclass(frozen=True, slots=True)
class _Steps:
    """Alert steps from a clock tick (no message behind them)."""

    transitions: list[rules.Transition]


@dataclass(frozen=True, slots=True)
class _Attempts:
    attempts: list[Attempt]


@dataclass(frozen=True, slots=True)
class _Dead:
    invalid: DeadRecord
    received_at: datetime


@dataclass(frozen=True, slots=True)
class _Drain:
    """From stop: store what is queued, send every held-back ack, then set ``done``. From
    settle (``acks=False``): store what is queued, then set ``done``."""

    done: threading.Event
    acks: bool = True


class Collector:
    def __init__(self, config: CollectorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.counters = Counters()
        self.window = config.time_window
        self.store = Store(
            make_engine(config.database_url), Quarantine(self.counters.quarantined), self.window
        )
        self._dead_caps = DeadLetterCaps(
            config.dead_letters_per_agent, config.dead_letters_total, {}
        )
        self._queue: queue.Queue[_Valid | _Dead | _Steps | _Attempts | _Drain | None] = (
            queue.Queue()
        )
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._profiles: dict[tuple[str, str], str] = {}
        self._unknown_profiles: dict[tuple[str, str], str] = {}
        self._views: dict[tuple[str, str], RoomView] = {}
        self._views_lock = threading.RLock()
        # Keyed by the (cached, immutable) profile object's id; the profile is kept to check it.
        self._rules_cache: dict[
            tuple[int, StudentBand | None],
            tuple[PolicyProfile, rules.EnvironmentLimits, WatchRules],
        ] = {}
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._trackers: dict[tuple[str, str], SeqTracker] = {}
        # Acks (writer thread only): agents whose mark moved and is not yet acknowledged, the
        # last mark acknowledged to each, and when (time.monotonic()).
        self._acks_pending: set[tuple[str, str]] = set()
        self._acked_seq: dict[tuple[str, str], int] = {}
        self._acked_at: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        # Signs of life for the systemd watchdog (collector/liveness.py), and the last tick's
        # time on the collector's clock (a much larger gap is a stall of the collector).
        self._writer_beat = Beat()
        self._tick_beat = Beat()
        self._handling_since: float | None = None
        self._last_tick_at: datetime | None = None
        #: Rooms registered by an administrator in the web app (they override the config file).
        self._registered: dict[tuple[str, str], RoomRegistration] = {}
        self.listeners: list[Listener] = []
        self._checks: list[tuple[PeriodicCheck, frozenset[wire.AlertType], float]] = []
        self._writer = threading.Thread(
            target=self._write_loop, name="collector-writer", daemon=True
        )
        # Status is retained, and brokers give retained messages only to plain subscriptions:
        # every collector takes status itself (duplicates are dropped by id).
        subscriptions = [
            wire.subscription(k, share=None if k is wire.Kind.STATUS else config.share_group)
            for k in wire.AGENT_KINDS
        ]
        self.link = MqttLink(
            config.mqtt,
            f"roomwatch-{config.name}",
            subscriptions=subscriptions,
            on_message=self.on_message,
            bulk_io=True,
        )
        self.observability = Observability(
            self.counters,
            self._queue.qsize,
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

    # ---------------------------------------------------------------- control

    def open(self) -> None:
        """Everything but the network: schema, open alerts, progress, room views, writer."""
        migrate(self.store.engine)
        self.desk.load(self.store.open_alerts())
        self._trackers = {key: SeqTracker(seq) for key, seq in self.store.load_progress().items()}
        self._registered = self.store.registered_rooms()
        self._dead_caps = DeadLetterCaps(
            self.config.dead_letters_per_agent,
            self.config.dead_letters_total,
            self.store.dead_letter_counts(),
        )
        with self._views_lock:
            since = self.clock.now() - timedelta(days=REBUILD_DAYS)
            for message, received_at in self.store.recent_room_facts(since):
                key = (message.site, message.room)
                if isinstance(message, wire.Status):
                    self._profiles[key] = message.profile
                view = self._views.get(key) or RoomView(*key)
                self._views[key] = observe(view, message, received_at, self.window)
        if self.counters.quarantined:
            log.error(
                "started with %d unreadable row(s) quarantined (%s): see the errors above",
                sum(self.counters.quarantined.values()),
                ", ".join(f"{t}: {n}" for t, n in sorted(self.counters.quarantined.items())),
            )
        self._writer.start()
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
                log.error(
                    "cannot serve health/metrics on %s:%s: %s",
                    self.config.http_host,
                    self.config.http_port,
                    exc,
                )
        self.link.start()
        if schedule:
            self._scheduler.add_job(
                self._tick_safely,
                "interval",
                seconds=self.config.tick_s,
                id="tick",
                max_instances=1,
                coalesce=True,
            )
            for n, (check, owned, every_s) in enumerate(self._checks):
                self._scheduler.add_job(
                    self._check_safely,
                    "interval",
                    args=(check, owned),
                    seconds=every_s,
                    id=f"check-{n}",
                    max_instances=1,
                    coalesce=True,
                )
            heartbeat = systemd.watchdog_interval_s()
            if heartbeat is not None:
                self._scheduler.add_job(
                    self.heartbeat().beat, "interval", seconds=heartbeat, id="watchdog"
                )
            self._scheduler.start()
        systemd.notify("READY=1")
        log.info(
            "collector %s started (database %s)",
            self.config.name,
            self.store.engine.url.render_as_string(),
        )

    def stop(self) -> None:
        """Stop in reverse: no ticks, no new messages, then flush what was received, then close."""
        systemd.notify("STOPPING=1")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self.observability.close()
        if self._writer.is_alive():
            # Acks held back (ACK_EVERY_S) go out while the link can still carry them.
            drained = threading.Event()
            self._queue.put(_Drain(drained))
            drained.wait(timeout=10)
        self.link.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout=10)
        self._queue.put(None)
        self._writer.join(timeout=30)
        self.store.engine.dispose()

    # ----------------------------------------------------------- the hot path

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called on paho's thread for every message. Never raises."""
        now = self.clock.now()
        self.counters.received += 1
        self._handling_since = time.monotonic()
        try:
            result = wire.decode(topic, payload)
            if isinstance(result, wire.Invalid):
                self.counters.invalid += 1
                log.warning("invalid message on %s: %s", result.topic[:200], result.reason[:300])
                self._dead_letter(result, now)
                return
            message = result.message
            if message.kind not in wire.AGENT_KINDS:
                # Not ours to store (a broker that mixes up retained messages, e.g. amqtt
                # 0.12, sends acks too): an ack's seq must never count as a stored message.
                log.debug("ignored a %s message on %s", message.kind.value, topic)
                return
            kind = message.kind.value
            self.counters.by_kind[kind] = self.counters.by_kind.get(kind, 0) + 1
            if self.window.skew(message.ts, now) is None:  # a year-1 ts would skew the sum
                self.observability.ingest_lag.observe(max(0.0, (now - message.ts).total_seconds()))
            if message.id in self._seen:
                self.counters.duplicates += 1
                return
            self._remember(message.id)
            transitions = self._judge(message, now)
            self._queue.put(_Valid(message, now, transitions))
            self._tell(frozenset({(message.site, message.room)}), transitions)
        except Exception as exc:
            log.exception("unexpected failure handling a message on %s", topic[:200])
            self._dead_letter(wire.Invalid(topic, payload, f"collector error: {exc}"), now)
        finally:
            self._handling_since = None

    def _dead_letter(self, invalid: wire.Invalid, now: datetime) -> None:
        """Keep a bounded record of it, unless its room's or the total cap is reached."""
        record = shrink(invalid)
        if self._dead_caps.admit(record.source):
            self._queue.put(_Dead(record, now))
        else:
            self.counters.dead_letters_dropped += 1

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        if len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)

    def _judge(self, message: wire.Message, now: datetime) -> list[rules.Transition]:
        """Fold the message into its room's view and reconcile the room's alerts."""
        key = (message.site, message.room)
        with self._views_lock:
            if isinstance(message, wire.Status):
                self._profiles[key] = message.profile
            view = self._views.get(key) or RoomView(*key)
            view = self._views[key] = observe(view, message, now, self.window)
            # A status is news when it arrives: a last will carries the time it was made
            # (when the agent connected), not the time it fired. A time outside the window
            # is not believed: the message counts from its arrival (core/claimed_time.py).
            judged = judge(message, now, self.window).message
            sent = now if isinstance(message, wire.Status) else judged.ts
            late = (now - sent).total_seconds() > self.config.late_after_s
            # Raised at the message's own time: after an outage, when it happened.
            return self._evaluate(view, now, at=min(sent, now), late=late)

    def _tick_safely(self) -> None:
        try:
            self.tick()
            self._tick_beat.now()
        except Exception:
            log.exception("tick failed; the schedule goes on")

    def tick(self) -> list[rules.Transition]:
        """Time passes: time limits, checkpoints, lapses and silences fall due."""
        now = self.clock.now()
        transitions: list[rules.Transition] = []
        stalled = stall_of(self._last_tick_at, now, self.config.tick_s)
        self._last_tick_at = now
        with self._views_lock:
            if stalled is not None:
                # Nothing could be heard while the collector itself was stopped: no agent is
                # to blame for that silence.
                forgive(self._views, stalled, now)
                log.warning(
                    "the collector itself was stalled for %.0f s (no tick for %.0f s): silence "
                    "is measured from now, not blamed on the agents",
                    stalled.total_seconds(),
                    stalled.total_seconds() + self.config.tick_s,
                )
            for view in list(self._views.values()):
                transitions += self._evaluate(view, now, at=now, late=False)
        transitions += self.desk.escalate()
        if transitions:
            self._queue.put(_Steps(transitions))
            self._tell(frozenset(), transitions)
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
        if not self._writer.is_alive():
            return True
        done = threading.Event()
        self._queue.put(_Drain(done, acks=False))
        return done.wait(timeout)

    def run_check(
        self, check: PeriodicCheck, owned: frozenset[wire.AlertType]
    ) -> list[rules.Transition]:
        now = self.clock.now()
        found = check(now)
        rooms = set(found) | {
            (a.site, a.room) for a in list(self.desk.open.values()) if a.type in owned
        }
        transitions: list[rules.Transition] = []
        for site, room in sorted(rooms):
            transitions += self.desk.reconcile(
                site, room, found.get((site, room), []), owned, now, False
            )
        if transitions:
            self._queue.put(_Steps(transitions))
            self._tell(frozenset(), transitions)  # the web app's live pages, as for ticks
        return transitions

    def _check_safely(self, check: PeriodicCheck, owned: frozenset[wire.AlertType]) -> None:
        try:
            self.run_check(check, owned)
        except Exception:
            log.exception("periodic check failed; the schedule goes on")

    def acknowledge(self, alert_id: str, by: str) -> rules.Transition:
        """A named user takes an open alert (AcknowledgeError if it is not open)."""
        transition = self.desk.acknowledge(alert_id, by)
        self._queue.put(_Steps([transition]))
        # Audited by the writer, in the transaction that stores the step (storage.audit_changes).
        self._tell(frozenset(), [transition])
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
        return (
            self._registered.get(key)
            or self.config.rooms.get(f"{key[0]}/{key[1]}")
            or RoomRegistration()
        )

    def room_snapshot(self, key: tuple[str, str]) -> RoomSnapshot | None:
        with self._views_lock:
            view = self._views.get(key)
        if view is None:
            return None
        profile = self._profile(key)
        settings = self.room_registration(key)
        alerts = [a for a in list(self.desk.open.values()) if (a.site, a.room) == key]
        limits, watch = self._rules_of(profile, settings.student_band)
        return RoomSnapshot(view, profile, settings, limits, watch, alerts)

    def room_snapshots(self) -> list[RoomSnapshot]:
        """Every room the collector has heard from, by site and room."""
        with self._views_lock:
            keys = sorted(self._views)
        return [s for s in (self.room_snapshot(k) for k in keys) if s is not None]

    def open_alerts(self) -> list[rules.OpenAlert]:
        return sorted(self.desk.open.values(), key=lambda a: a.raised_at, reverse=True)

    def register_room(self, site: str, room: str, settings: RoomRegistration, by: str) -> None:
        """An administrator sets a room's profile and student band (stored, audited, and
        applied from the next evaluation on)."""
        self.store.register_room(site, room, settings, by, self.clock.now())
        key = (site, room)
        if settings.profile is None and settings.student_band is None:
            # Nothing set: as after a restart (registered_rooms skips such rows), the
            # config file and the agent's report decide again.
            self._registered.pop(key, None)
        else:
            self._registered[key] = settings
        with self._views_lock:
            self._views.setdefault(key, RoomView(site, room))
        self._tell(frozenset({key}), [])

    def _deliver(self, transition: rules.Transition) -> None:
        """Hand an alert step to the channels of its tier (when notify tiers are configured).

        Raised and escalated steps go to the tier the alert has reached; acknowledged and
        resolved steps to the first tier, so the people woken hear that it is handled."""
        if self.dispatcher is None:
            return
        a = transition.alert
        state = transition.state
        tier = a.tier if state in (wire.AlertState.RAISED, wire.AlertState.ESCALATED) else 1
        if a.severity is not wire.Severity.CRITICAL and state is not wire.AlertState.RAISED:
            return  # warnings and info: one notice, no follow-ups
        who = f" by {a.acknowledged_by}" if state is wire.AlertState.ACKNOWLEDGED else ""
        self.dispatcher.submit(
            Notification(
                alert_id=a.alert_id,
                state=state.value,
                severity=a.severity.value,
                title=f"[{a.severity.value.upper()}] {a.type.value.replace('_', ' ')} in "
                f"{a.site}/{a.room}: {state.value}{who}",
                body=a.message,
                tier=tier,
            )
        )

    def _record_attempt(self, attempt: Attempt) -> None:
        """Called on a delivery thread: the writer stores it with everything else."""
        if not attempt.ok:
            self.counters.delivery_failures += 1
        self._queue.put(_Attempts([attempt]))

    def _evaluate(
        self, view: RoomView, now: datetime, at: datetime, late: bool
    ) -> list[rules.Transition]:
        key = (view.site, view.room)
        profile = self._profile(key)
        band = self.room_registration(key).student_band
        limits, watch = self._rules_of(profile, band)
        raised = self.desk.raised_in(view.site, view.room, view.episode_id)
        found = conditions(view, limits, watch, now, self.config.telemetry_interval_s, raised)
        found += skew_conditions(view.clock_skew_s)
        transitions = self.desk.reconcile(view.site, view.room, found, ROOM_TYPES, at, late)
        for t in transitions:
            if t.state is wire.AlertState.RAISED:
                self.counters.alerts += 1
                key = (t.alert.type.value, t.alert.severity.value)
                self.counters.alerts_by_type[key] = self.counters.alerts_by_type.get(key, 0) + 1
        return transitions

    def _rules_of(
        self, profile: PolicyProfile, band: StudentBand | None
    ) -> tuple[rules.EnvironmentLimits, WatchRules]:
        """A profile's limits and watch rules, built once (not for every message)."""
        key = (id(profile), band)
        found = self._rules_cache.get(key)
        if found is None or found[0] is not profile:
            limits = rules.EnvironmentLimits.from_profile(profile)
            found = self._rules_cache[key] = (
                profile,
                limits,
                WatchRules.from_profile(profile, band),
            )
        return found[1], found[2]

    def heartbeat(self) -> Heartbeat:
        """The checks that feed systemd's watchdog (collector/liveness.py)."""

        def network() -> str | None:
            if not self.link.network_alive():
                return "the MQTT network thread has stopped"
            since = self._handling_since
            if since is not None and time.monotonic() - since > HANDLER_STALE_S:
                return f"a message handler has run for {time.monotonic() - since:.1f} s"
            return None

        def writer() -> str | None:
            if not self._writer.is_alive():
                return "the database writer has stopped"
            return stale("the database writer", self._writer_beat, WRITER_STALE_S)()

        tick_limit = max(TICK_STALE_S, 5 * self.config.tick_s)
        return Heartbeat(
            {
                "network": network,
                "writer": writer,
                "tick": stale("the rules tick", self._tick_beat, tick_limit),
            }
        )

    def health(self) -> Health:
        """What /healthz reports: broker connection, writer thread, last database write."""
        reasons = []
        if not self.link.connected.is_set():
            reasons.append("not connected to the MQTT broker")
        if not self._writer.is_alive():
            reasons.append("the database writer has stopped")
        if self.counters.last_write_failed:
            reasons.append("the last database write failed (retrying)")
        if self.link.takeover.recent():
            reasons.append(
                f"the MQTT session was taken over within the last minute: another client "
                f"uses the client id {self.link.client_id}"
            )
        return Health(not reasons, reasons)

    def _profile(self, key: tuple[str, str]) -> PolicyProfile:
        profile_id = self.room_registration(key).profile
        profile_id = profile_id or self._profiles.get(key, self.config.default_profile)
        try:
            return load_profile(profile_id)
        except ProfileError:
            # Once per room and profile: the live board asks for the room several times a
            # second, and a warning each time would bury everything else in the log.
            if self._unknown_profiles.get(key) != profile_id:
                self._unknown_profiles[key] = profile_id
                log.warning(
                    "room %s/%s reports unknown profile %r; using %s",
                    *key,
                    profile_id,
                    self.config.default_profile,
                )
            return load_profile(self.config.default_profile)

    # ----------------------------------------------------------------- writer

    def _write_loop(self) -> None:
        # The writer's Python stretches (building rows) must not keep the network thread,
        # which publishes alerts, waiting for the GIL for CPython's default 5 ms.
        _SWITCH_INTERVAL.hold()
        try:
            self._write_until_stopped()
        finally:
            _SWITCH_INTERVAL.release()

    def _write_until_stopped(self) -> None:
        done = False
        while not done:
            self._writer_beat.now()
            try:
                # Acks held back (see _acknowledge) go out once the writer is idle; an idle
                # writer wakes every WRITER_BEAT_S anyway, to show the watchdog it is alive.
                item = self._queue.get(timeout=ACK_EVERY_S if self._acks_pending else WRITER_BEAT_S)
            except queue.Empty:
                self._flush_acks(force=True)
                continue
            batch: list[_Valid | _Dead | _Steps | _Attempts] = []
            drain: _Drain | None = None
            if item is None:
                done = True
            elif isinstance(item, _Drain):
                drain = item
            else:
                batch.append(item)
            # Gather for a moment: each commit has a fixed cost (an fsync, a row per room in
            # the derived tables), so under load fewer, larger batches store more per second.
            # Alerts do not wait for this: they are published before they are stored.
            deadline = time.monotonic() + BATCH_LINGER_S
            while not done and drain is None and len(batch) < self.config.batch_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        more = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                if more is None:
                    done = True
                    break
                if isinstance(more, _Drain):
                    drain = more
                    break
                batch.append(more)
            self._write_with_retry(batch)
            if drain is not None:
                if drain.acks:
                    self._await_published(self._flush_acks(force=True), timeout=5)
                drain.done.set()
        self._flush_acks(force=True)

    @staticmethod
    def _await_published(sent: list[mqtt.MQTTMessageInfo], timeout: float) -> None:
        """Wait (at most ``timeout`` in all) until the broker has each of ``sent``."""
        deadline = time.monotonic() + timeout
        for info in sent:
            # Not connected (it raises): the agent keeps its messages and replays them.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))

    def _write_with_retry(self, batch: list[_Valid | _Dead | _Steps | _Attempts]) -> None:
        delay = 0.5
        refused = 0
        while batch:
            try:
                self._write(batch)
                self.counters.last_write_failed = False
                return
            except Exception as exc:  # noqa: BLE001 - any database failure: keep the batch, retry
                self.counters.write_failures += 1
                self.counters.last_write_failed = True
                # Refused for what it holds (not because the database is away), again and
                # again: one row it will never take must not hold up every other (issue 14).
                refused = refused + 1 if _refused_for_content(exc) else 0
                if refused >= ISOLATE_AFTER:
                    log.error("database refused a batch %d times (%s): writing item by item",
                              refused, exc)  # fmt: skip
                    self._write_each(batch)
                    return
                log.error(
                    "database write of %d item(s) failed (%s); retrying in %.1f s",
                    len(batch),
                    exc,
                    delay,
                )
                if self._wait_alive(delay):
                    log.error("stopping with %d item(s) unwritten", len(batch))
                    return
                delay = min(delay * 2, 30)

    def _write_each(self, batch: list[_Valid | _Dead | _Steps | _Attempts]) -> None:
        for item in batch:
            try:
                self._write([item])
            except Exception as exc:  # noqa: BLE001 - sorted out below
                if _refused_for_content(exc):
                    self._refused(item, exc)
                else:  # the database itself is failing now: wait for it, as for any batch
                    self._write_with_retry([item])
        self.counters.last_write_failed = False

    def _refused(self, item: _Valid | _Dead | _Steps | _Attempts, exc: Exception) -> None:
        """The database will not take ``item``: keep what can be kept, and move on."""
        if not isinstance(item, _Valid):
            log.error("the database refused a %s (%s); dropped", type(item).__name__[1:], exc)
            return
        m = item.message
        log.error("the database refused message %s from %s/%s (%s); dead-lettered",
                  m.id, m.site, m.room, exc)  # fmt: skip
        reason = f"the database refused it: {exc}"
        dead = _Dead(
            shrink(wire.Invalid(wire.topic_of(m), wire.encode(m), reason)), item.received_at
        )
        rest: list[_Valid | _Dead | _Steps | _Attempts] = [dead]
        if item.transitions:
            rest.append(_Steps(item.transitions))  # the alert steps it caused are still owed
        try:
            self._write(rest)
        except Exception:
            log.exception("could not store the refused message's dead letter")
        # Accounted for: its number must not hold the agent's acknowledgement forever.
        self._acknowledge([item], {m.id})

    def _wait_alive(self, seconds: float) -> bool:
        """Wait ``seconds`` for the stop event (True: stopping), showing life meanwhile: a
        writer backing off from a failing database is waiting, not hung."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._writer_beat.now()
            if self._stop.wait(min(left, WRITER_BEAT_S)):
                return True
        return False

    def _write(self, batch: list[_Valid | _Dead | _Steps | _Attempts]) -> None:
        valid = [i for i in batch if isinstance(i, _Valid)]
        steps = [t for i in batch if isinstance(i, _Valid | _Steps) for t in i.transitions]
        new_ids = self.store.write_batch(
            ((i.message, i.received_at) for i in valid),
            steps,
            [(i.invalid, i.received_at) for i in batch if isinstance(i, _Dead)],
            [
                DeliveryAttempt(
                    alert_id=a.alert_id,
                    state=a.state,
                    tier=a.tier,
                    channel=a.channel[:500],
                    at=a.at,
                    ok=a.ok,
                    error=(a.error or "")[:1000] or None,
                    attempt=a.attempt,
                )
                for i in batch
                if isinstance(i, _Attempts)
                for a in i.attempts
            ],
        )
        self.counters.stored += len(new_ids)
        self._acknowledge(valid, new_ids)

    # ------------------------------------------------------------ end to end

    def _acknowledge(self, valid: list[_Valid], new_ids: set[str]) -> None:
        """After the commit: advance each agent's stored-up-to mark and tell the agent."""
        now = self.clock.now()
        before: dict[tuple[str, str], int] = {}
        for item in valid:
            m = item.message
            key = (m.site, m.room)
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = self._trackers[key] = SeqTracker.unknown()
            seq = getattr(m, "seq", None)
            if isinstance(m, wire.Status):
                before.setdefault(key, tracker.contiguous)
                tracker.agent_acked(m.acked_seq, now)  # what it no longer holds is not owed
                continue
            if seq is None:
                continue
            if m.id in new_ids and seq <= tracker.contiguous:
                log.warning(
                    "%s/%s restarted its sequence at %d (was past %d): following it",
                    *key,
                    seq,
                    tracker.contiguous,
                )
                tracker.restart_at(seq)
                before.setdefault(key, seq - 1)
            before.setdefault(key, tracker.contiguous)
            if isinstance(m, wire.Event) and m.type == "telemetry_dropped":
                first = m.fields.get("first_seq")
                if isinstance(first, int) and not isinstance(first, bool) and first <= seq:
                    tracker.cover(first, seq, now)  # the agent's full outbox gave these up
            tracker.add(seq, now)
        for key, tracker in self._trackers.items():
            gap = tracker.stale_gap(now, self.config.gap_grace_s)
            if gap is not None:
                self.counters.gaps += 1
                log.warning(
                    "%s/%s: sequence %d-%d (%d message(s)) missing for over %.0f s; "
                    "waiting for the agent's replay",
                    *key,
                    gap.first,
                    gap.last,
                    gap.size,
                    self.config.gap_grace_s,
                )
        for key, old in before.items():
            if self._trackers[key].contiguous != old:
                self._acks_pending.add(key)
        self._flush_acks(force=False)

    def _flush_acks(self, force: bool) -> list[mqtt.MQTTMessageInfo]:
        """Save and publish each pending agent's stored-up-to mark (all of them committed).

        At most one ack per agent every ``ACK_EVERY_S`` (``force``: now, for all pending): under
        load a batch holds messages from hundreds of agents, and an ack for each of them after
        every commit would cost more than storing the messages. An agent only keeps its outbox
        a moment longer; the writer sends what is held back as soon as it is idle."""
        if not self._acks_pending:
            return []
        mono = time.monotonic()
        due = {
            key
            for key in self._acks_pending
            if force or mono - self._acked_at.get(key, -ACK_EVERY_S) >= ACK_EVERY_S
        }
        advanced = {
            key: self._trackers[key].contiguous
            for key in sorted(due)
            if self._trackers[key].contiguous != self._acked_seq.get(key)
        }
        self._acks_pending -= due
        if not advanced:
            return []
        now = self.clock.now()
        try:
            self.store.save_progress(advanced, now)
        except Exception:
            self._acks_pending |= due  # not saved: not acknowledged; the next flush retries
            log.exception("could not save agents' progress; acks held back")
            return []
        sent = []
        for key, seq in advanced.items():
            site, room = key
            self._acked_seq[key] = seq
            self._acked_at[key] = mono
            ack = wire.Ack(id=uuid.uuid4().hex, ts=now, site=site, room=room, seq=seq)
            # Retained, so an agent that restarts learns at once what is safe to forget.
            sent.append(self.link.publish(wire.topic_of(ack), wire.encode(ack), qos=1, retain=True))
        return sent
