"""The collector's writer: one thread that stores what the hot path hands it, in batches.

Alerts never wait for it (they are published before they are stored). It gathers for at
most ``BATCH_LINGER_S`` after the first item, commits one transaction per batch, retries
with backoff (saying why) while the database fails, and writes item by item when the
database refuses a batch for its content, so one row it will never take cannot hold up
every other. After each commit it tells ``on_committed`` which messages are stored; the ack
book listens there. It knows nothing of acks, rooms or MQTT.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from roomwatch.collector.dead_letters import DeadRecord, shrink
from roomwatch.collector.delivery import Attempt
from roomwatch.collector.liveness import Beat
from roomwatch.collector.models import DeliveryAttempt
from roomwatch.collector.observability import Counters
from roomwatch.collector.storage import Store
from roomwatch.core import rules, wire

log = logging.getLogger(__name__)

#: The writer gathers a batch for at most this long after its first item.
BATCH_LINGER_S = 0.05
#: How long a thread may hold the GIL while another waits (CPython's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005
#: An idle writer wakes this often, to show the watchdog it is alive.
WRITER_BEAT_S = 1.0
#: A batch the database refuses this many times in a row for its content is written item by
#: item (a race with another collector over the same ids resolves on the first retry).
ISOLATE_AFTER = 3


@dataclass(frozen=True, slots=True)
class Received:
    """A valid message, when it arrived, and the alert steps it caused."""

    message: wire.Message
    received_at: datetime
    transitions: list[rules.Transition]


@dataclass(frozen=True, slots=True)
class Steps:
    """Alert steps with no message behind them (a tick, a check, an acknowledgement)."""

    transitions: list[rules.Transition]


@dataclass(frozen=True, slots=True)
class Attempts:
    attempts: list[Attempt]


@dataclass(frozen=True, slots=True)
class Dead:
    invalid: DeadRecord
    received_at: datetime


Item = Received | Steps | Attempts | Dead


@dataclass(frozen=True, slots=True)
class _Drain:
    """Store what is queued, then (``acks``) call ``on_drain``, then set ``done``."""

    done: threading.Event
    acks: bool = True


def refused_for_content(exc: Exception) -> bool:
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

Committed = Callable[[Sequence[wire.Message], set[str]], None]


class Writer:
    """The queue and the thread that empties it into ``store``.

    ``on_committed(messages, new_ids)`` after each commit (and for a message the database
    refused, which is accounted for by its dead letter); ``on_idle()`` when nothing came for
    ``idle_wake_s()`` seconds (None: ``WRITER_BEAT_S``); ``on_drain()`` when :meth:`drain`
    asks for it. All three run on the writer's thread."""

    def __init__(
        self,
        store: Store,
        counters: Counters,
        batch_max: int,
        *,
        on_committed: Committed,
        on_idle: Callable[[], None] = lambda: None,
        on_drain: Callable[[], None] = lambda: None,
        idle_wake_s: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.store = store
        self.counters = counters
        self.batch_max = batch_max
        self._on_committed = on_committed
        self._on_idle = on_idle
        self._on_drain = on_drain
        self._idle_wake_s = idle_wake_s
        self._queue: queue.Queue[Item | _Drain | None] = queue.Queue()
        self._stop = threading.Event()
        #: Its last sign of life, for the systemd watchdog (collector/liveness.py).
        self.beat = Beat()
        self._thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)

    # ---------------------------------------------------------------- control

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def depth(self) -> int:
        return self._queue.qsize()

    def drain(self, timeout: float, acks: bool = True) -> bool:
        """Wait until everything queued so far is stored (and ``acks``: ``on_drain`` ran).
        True at once when the writer is not running: there is nothing to wait for."""
        if not self.alive():
            return True
        done = threading.Event()
        self._queue.put(_Drain(done, acks))
        return done.wait(timeout)

    def stop(self, timeout: float) -> None:
        """Store what is queued, then end the thread. A database still failing after
        ``timeout`` is given up on: what is unwritten is logged, and agents replay it."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(2 * WRITER_BEAT_S)

    # ----------------------------------------------------------------- thread

    def _run(self) -> None:
        # The writer's Python stretches (building rows) must not keep the network thread,
        # which publishes alerts, waiting for the GIL for CPython's default 5 ms.
        _SWITCH_INTERVAL.hold()
        try:
            done = False
            while not done:
                done = self._one_batch()
            self._on_idle()
        finally:
            _SWITCH_INTERVAL.release()

    def _one_batch(self) -> bool:
        """Gather and store one batch; True once told to end."""
        self.beat.now()
        try:
            wake = self._idle_wake_s()
            item = self._queue.get(timeout=WRITER_BEAT_S if wake is None else wake)
        except queue.Empty:
            self._on_idle()
            return False
        batch: list[Item] = []
        if item is None:
            return self._store(batch, None, done=True)
        if isinstance(item, _Drain):
            return self._store(batch, item, done=False)
        batch.append(item)
        return self._gather(batch)

    def _gather(self, batch: list[Item]) -> bool:
        # Gather for a moment: each commit has a fixed cost (an fsync, a row per room in the
        # derived tables), so under load fewer, larger batches store more per second.
        deadline = time.monotonic() + BATCH_LINGER_S
        while len(batch) < self.batch_max:
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
                return self._store(batch, None, done=True)
            if isinstance(more, _Drain):
                return self._store(batch, more, done=False)
            batch.append(more)
        return self._store(batch, None, done=False)

    def _store(self, batch: list[Item], drain: _Drain | None, done: bool) -> bool:
        self._write_with_retry(batch)
        if drain is not None:
            if drain.acks:
                self._on_drain()
            drain.done.set()
        return done

    def _write_with_retry(self, batch: list[Item]) -> None:
        delay = 0.5
        refused = 0
        while batch:
            try:
                self.write(batch)
                self.counters.last_write_failed = False
                return
            except Exception as exc:  # noqa: BLE001 - any database failure: keep the batch, retry
                self.counters.write_failures += 1
                self.counters.last_write_failed = True
                # Refused for what it holds (not because the database is away), again and
                # again: one row it will never take must not hold up every other (issue 14).
                refused = refused + 1 if refused_for_content(exc) else 0
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

    def _write_each(self, batch: list[Item]) -> None:
        for item in batch:
            try:
                self.write([item])
            except Exception as exc:  # noqa: BLE001 - sorted out below
                if refused_for_content(exc):
                    self._refused(item, exc)
                else:  # the database itself is failing now: wait for it, as for any batch
                    self._write_with_retry([item])
        self.counters.last_write_failed = False

    def _refused(self, item: Item, exc: Exception) -> None:
        """The database will not take ``item``: keep what can be kept, and move on."""
        if not isinstance(item, Received):
            log.error("the database refused a %s (%s); dropped", type(item).__name__, exc)
            return
        m = item.message
        log.error("the database refused message %s from %s/%s (%s); dead-lettered",
                  m.id, m.site, m.room, exc)  # fmt: skip
        reason = f"the database refused it: {exc}"
        dead = Dead(
            shrink(wire.Invalid(wire.topic_of(m), wire.encode(m), reason)), item.received_at
        )
        rest: list[Item] = [dead]
        if item.transitions:
            rest.append(Steps(item.transitions))  # the alert steps it caused are still owed
        try:
            self.write(rest)
        except Exception:
            log.exception("could not store the refused message's dead letter")
        # Accounted for: its number must not hold the agent's acknowledgement forever.
        self._on_committed([m], {m.id})

    def _wait_alive(self, seconds: float) -> bool:
        """Wait ``seconds`` for the stop event (True: stopping), showing life meanwhile: a
        writer backing off from a failing database is waiting, not hung."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.beat.now()
            if self._stop.wait(min(left, WRITER_BEAT_S)):
                return True
        return False

    def write(self, batch: list[Item]) -> None:
        """Store one batch now, on the caller's thread (the writer's own, or a benchmark's)."""
        received = [i for i in batch if isinstance(i, Received)]
        steps = [t for i in batch if isinstance(i, Received | Steps) for t in i.transitions]
        new_ids = self.store.write_batch(
            ((i.message, i.received_at) for i in received),
            steps,
            [(i.invalid, i.received_at) for i in batch if isinstance(i, Dead)],
            [_attempt_row(a) for i in batch if isinstance(i, Attempts) for a in i.attempts],
        )
        self.counters.stored += len(new_ids)
        self._on_committed([i.message for i in received], new_ids)


def _attempt_row(a: Attempt) -> DeliveryAttempt:
    return DeliveryAttempt(
        alert_id=a.alert_id,
        state=a.state,
        tier=a.tier,
        channel=a.channel[:500],
        at=a.at,
        ok=a.ok,
        error=(a.error or "")[:1000] or None,
        attempt=a.attempt,
    )
