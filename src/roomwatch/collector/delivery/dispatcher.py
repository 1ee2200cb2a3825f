"""Per-channel queues, workers and retries: the dispatcher.

Every channel (one Apprise URL) has its own queue and worker thread, so a
channel that hangs or fails never delays another channel, and nothing ever
waits for the network on the caller's thread.

* Order in a channel's queue: critical before warning before info; first in,
  first out within a severity. A warning waiting to be retried steps aside for a
  critical that arrives meanwhile, then keeps its place in line.
* Retries: a failed attempt is retried after ``first_retry_s``, doubling up to
  ``max_retry_s``, until ``max_attempts`` attempts were made. The wait is cut
  short by :meth:`Dispatcher.stop`. Backoff runs on real (monotonic) time: it
  paces network calls, not the room's clock; ``Attempt.at`` comes from the
  injected clock. A URL that Apprise cannot use fails once, without retries.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from roomwatch.collector.delivery.channels import (
    AppriseSender,
    Outcome,
    Send,
    custom_sender,
    unusable,
)
from roomwatch.collector.delivery.messages import (
    SEVERITY_PRIORITY,
    Attempt,
    Notification,
    Notify,
)
from roomwatch.collector.delivery.redaction import redact
from roomwatch.collector.delivery.scrubbing import THIRD_PARTY_LOGGERS, ScrubbedLoggers, Scrubber
from roomwatch.core.clock import Clock

log = logging.getLogger(__name__)

_HALT = -1  # priority of the item that stops a worker at once
_DRAIN = 1_000  # priority of the item that stops a worker once its queue is empty


@dataclass(frozen=True, slots=True)
class _Retries:
    """How often and how soon a failed attempt is tried again (backoff doubling to a ceiling)."""

    max_attempts: int
    first_s: float
    max_s: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.first_s < 0 or self.max_s < 0:
            raise ValueError("retry delays cannot be negative")

    def delay(self, attempts_made: int) -> float:
        ceiling = max(self.max_s, self.first_s)
        return float(min(self.first_s * 2 ** (attempts_made - 1), ceiling))


@dataclass(slots=True)
class _Job:
    notification: Notification
    tier: int
    priority: int
    seq: int
    attempt: int = 0  # attempts made so far
    not_before: float = 0.0  # monotonic time before which the next attempt must not start
    done: bool = False


_Item = tuple[int, int, _Job | None]


class _Channel:
    def __init__(self, index: int, url: str, label: str) -> None:
        self.index = index
        self.url = url
        self.label = label
        self.send: Send = unusable
        self.queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def outranked(self, priority: int) -> bool:
        """Whether something more urgent than ``priority`` waits in the queue."""
        with self.queue.mutex:
            return bool(self.queue.queue) and self.queue.queue[0][0] < priority


class _Channels:
    """The channels of every tier; a URL listed in several tiers is one channel."""

    def __init__(self, tiers: Sequence[Sequence[str]]) -> None:
        self.by_url: dict[str, _Channel] = {}
        self.tiers: list[list[_Channel]] = []
        self.secrets: set[str] = set()
        labels: set[str] = set()
        for number, urls in enumerate(tiers, start=1):
            if isinstance(urls, str):
                raise TypeError(f"tier {number} must be a list of URLs, not one string")
            channels: list[_Channel] = []
            for url in urls:
                channel = self.by_url.get(url) or self._add(url, labels)
                if channel not in channels:
                    channels.append(channel)
            self.tiers.append(channels)

    def _add(self, url: str, labels: set[str]) -> _Channel:
        redacted = redact(url)
        label = redacted.label
        if label in labels:  # two URLs that differ only in their secrets
            label = f"{label} #{len(self.by_url) + 1}"
        labels.add(label)
        self.secrets |= redacted.secrets
        channel = _Channel(len(self.by_url) + 1, url, label)
        self.by_url[url] = channel
        return channel


class Dispatcher:
    """Sends notifications to the channels of their tier; never blocks the caller.

    ``tiers[0]`` holds the tier-1 Apprise URLs, ``tiers[1]`` tier 2, and so on; a
    URL listed in several tiers is one channel. ``notify(url, title, body) -> ok``
    replaces Apprise (default: one ``apprise.Apprise`` per channel, created here).
    """

    def __init__(
        self,
        tiers: Sequence[Sequence[str]],
        record: Callable[[Attempt], None],
        clock: Clock,
        *,
        max_attempts: int = 6,
        first_retry_s: float = 1.0,
        max_retry_s: float = 60.0,
        notify: Notify | None = None,
    ) -> None:
        self._retries = _Retries(max_attempts, first_retry_s, max_retry_s)
        self._record = record
        self._clock = clock

        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._pending = 0
        self._started = False
        self._stopping = False
        self._live_workers = 0
        self._halt = threading.Event()

        channels = _Channels(tiers)
        self._channels = channels.by_url
        self._tiers = channels.tiers
        self._scrub = Scrubber(channels.secrets)
        self._scrubbed = ScrubbedLoggers(self._scrub, (*THIRD_PARTY_LOGGERS, __name__))
        self._attach_senders(notify)

    def _attach_senders(self, notify: Notify | None) -> None:
        if notify is not None:
            custom = custom_sender(notify)
            for channel in self._channels.values():
                channel.send = custom
            return
        self._scrubbed.install()  # Apprise logs unusable URLs while parsing them
        try:
            for channel in self._channels.values():
                sender = AppriseSender(channel.url)
                channel.send = sender
                if not sender.valid:
                    log.error(
                        "notification channel %s is not a valid or supported Apprise URL;"
                        " every delivery to it will fail",
                        channel.label,
                    )
        finally:
            self._scrubbed.remove()

    # -- public -------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Channel deliveries queued or under way (not yet delivered nor given up)."""
        with self._lock:
            return self._pending

    def submit(self, n: Notification) -> None:
        """Queue ``n`` for every channel of its tier. Never blocks, never raises."""
        try:
            self._submit(n)
        except Exception:
            log.exception(
                "could not queue the notification of alert %s", getattr(n, "alert_id", "?")
            )

    def start(self) -> None:
        """Start one worker thread per channel."""
        with self._lock:
            if self._started or self._stopping:
                log.warning("delivery dispatcher already started or stopped; start() ignored")
                return
            self._started = True
            self._scrubbed.install()
            for channel in self._channels.values():
                channel.thread = threading.Thread(
                    target=self._run,
                    args=(channel,),
                    name=f"roomwatch-delivery-{channel.index}",
                    daemon=True,
                )
                self._live_workers += 1
                channel.thread.start()
        log.info(
            "delivery started: %d channel(s) in %d tier(s)", len(self._channels), len(self._tiers)
        )

    def stop(self, timeout: float = 10) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, then stop the workers.

        Returns within ``timeout`` (plus a few milliseconds) even if a channel hangs:
        a worker stuck in a network call is left to finish it (it is a daemon thread)
        and exits afterwards without trying anything else.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            for channel in self._channels.values():
                channel.queue.put_nowait((_DRAIN, next(self._seq), None))
        for channel in self._channels.values():
            if channel.thread is not None:
                channel.thread.join(max(0.0, deadline - time.monotonic()))
        busy = [c.label for c in self._channels.values() if c.thread and c.thread.is_alive()]
        self._halt.set()
        if busy:
            for channel in self._channels.values():
                channel.queue.put_nowait((_HALT, next(self._seq), None))
                channel.wake.set()
            log.warning("delivery stopped with channels still busy: %s", ", ".join(busy))
        with self._lock:
            undelivered = self._pending
            if self._live_workers == 0:
                self._scrubbed.remove()
        if undelivered:
            log.warning("delivery stopped with %d channel deliveries not done", undelivered)
        else:
            log.info("delivery stopped")

    # -- submitting ---------------------------------------------------------

    def _submit(self, n: Notification) -> None:
        tier, channels = self._channels_for(n)
        if not channels:
            return
        priority = SEVERITY_PRIORITY.get(n.severity)
        if priority is None:
            log.warning("alert %s: unknown severity %r, sent as critical", n.alert_id, n.severity)
            priority = SEVERITY_PRIORITY["critical"]
        with self._lock:
            if self._stopping:
                log.error(
                    "delivery is stopped: %s notification of alert %s not sent", n.state, n.alert_id
                )
                return
            for channel in channels:
                seq = next(self._seq)
                self._pending += 1
                channel.queue.put_nowait((priority, seq, _Job(n, tier, priority, seq)))
                channel.wake.set()

    def _channels_for(self, n: Notification) -> tuple[int, list[_Channel]]:
        """The tier ``n`` goes to (its own if configured, else the highest) and its channels."""
        if not self._tiers:
            log.error(
                "no notification tiers configured: alert %s (%s) reaches nobody",
                n.alert_id,
                n.state,
            )
            return 0, []
        tier = n.tier
        if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= len(self._tiers):
            tier = len(self._tiers)
            log.warning(
                "alert %s (%s): tier %r is not configured; sending to tier %d, the highest",
                n.alert_id,
                n.state,
                n.tier,
                tier,
            )
        channels = self._tiers[tier - 1]
        if not channels:
            log.error(
                "tier %d has no channels: alert %s (%s) reaches nobody", tier, n.alert_id, n.state
            )
        return tier, channels

    # -- working ------------------------------------------------------------

    def _run(self, channel: _Channel) -> None:
        try:
            while True:
                _, _, job = channel.queue.get()
                if job is None or self._halt.is_set():
                    return
                try:
                    self._deliver(channel, job)
                except Exception:
                    log.exception(
                        "delivery to %s failed unexpectedly (alert %s); the channel carries on",
                        channel.label,
                        job.notification.alert_id,
                    )
                    self._finish(job)
        finally:
            with self._lock:
                self._live_workers -= 1
                if self._live_workers == 0 and self._stopping:
                    self._scrubbed.remove()

    def _deliver(self, channel: _Channel, job: _Job) -> None:
        while True:
            if job.attempt:
                verdict = self._wait_for_retry(channel, job)
                if verdict == "preempted":
                    channel.queue.put_nowait((job.priority, job.seq, job))
                if verdict != "go":
                    return
            job.attempt += 1
            ok, error, retryable = self._send(channel, job.notification)
            final = ok or not retryable or job.attempt >= self._retries.max_attempts
            attempt = Attempt(
                alert_id=job.notification.alert_id,
                state=job.notification.state,
                tier=job.tier,
                channel=channel.label,
                at=self._clock.now(),
                ok=ok,
                error=error,
                attempt=job.attempt,
            )
            delay = self._retries.delay(job.attempt)
            self._log_outcome(job, attempt, final, delay)
            if final:
                self._finish(job)
            self._safe_record(attempt)
            if final or self._halt.is_set():
                return
            job.not_before = time.monotonic() + delay

    def _send(self, channel: _Channel, n: Notification) -> Outcome:
        """One attempt on the channel, its error text scrubbed of every secret."""
        try:
            ok, error, retryable = channel.send(channel.url, n)
        except Exception as e:  # noqa: BLE001 - any failure of a channel is an outcome
            ok, error, retryable = False, f"{type(e).__name__}: {e}", True
        return ok, None if error is None else self._scrub(error), retryable

    def _log_outcome(self, job: _Job, attempt: Attempt, final: bool, delay: float) -> None:
        n = job.notification
        if attempt.ok:
            log.info(
                "delivered %s %s of alert %s to %s (tier %d, attempt %d)",
                n.severity,
                n.state,
                n.alert_id,
                attempt.channel,
                job.tier,
                attempt.attempt,
            )
        elif final:
            log.error(
                "gave up delivering %s of alert %s to %s after %d attempt(s): %s",
                n.state,
                n.alert_id,
                attempt.channel,
                attempt.attempt,
                attempt.error,
            )
        else:
            log.warning(
                "delivering %s of alert %s to %s failed (attempt %d of %d): %s; retry in %.3gs",
                n.state,
                n.alert_id,
                attempt.channel,
                attempt.attempt,
                self._retries.max_attempts,
                attempt.error,
                delay,
            )

    def _wait_for_retry(self, channel: _Channel, job: _Job) -> Literal["go", "preempted", "halt"]:
        while True:
            channel.wake.clear()
            if self._halt.is_set():
                return "halt"
            if channel.outranked(job.priority):
                return "preempted"
            remaining = job.not_before - time.monotonic()
            if remaining <= 0:
                return "go"
            channel.wake.wait(remaining)

    def _finish(self, job: _Job) -> None:
        with self._lock:
            if not job.done:
                job.done = True
                self._pending -= 1

    def _safe_record(self, attempt: Attempt) -> None:
        try:
            self._record(attempt)
        except Exception:
            log.exception(
                "recording a delivery attempt failed (alert %s, %s, attempt %d)",
                attempt.alert_id,
                attempt.channel,
                attempt.attempt,
            )
