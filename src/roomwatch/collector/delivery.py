"""Deliver alert notifications to staff channels (Apprise URLs), one worker per channel.

Each step of an alert's life (DESIGN.md principle 6) that must reach a person is
handed to :meth:`Dispatcher.submit`, which only queues it and returns. Every
channel (one Apprise URL) has its own queue and worker thread, so a channel that
hangs or fails never delays another channel, and nothing ever waits for the
network on the caller's thread. Every attempt, good or bad, is handed to
``record`` for the audit trail.

Choices worth knowing:

* Order in a channel's queue: critical before warning before info; first in,
  first out within a severity. A warning waiting to be retried steps aside for a
  critical that arrives meanwhile, then keeps its place in line.
* Retries: a failed attempt is retried after ``first_retry_s``, doubling up to
  ``max_retry_s``, until ``max_attempts`` attempts were made. The wait is cut
  short by :meth:`Dispatcher.stop`. Backoff runs on real (monotonic) time: it
  paces network calls, not the room's clock; ``Attempt.at`` comes from the
  injected clock. A URL that Apprise cannot use fails once, without retries.
* Secrets: URLs carry passwords and tokens. Only :func:`redact_url`'s form of a
  URL is ever stored (``Attempt.channel``) or logged, error texts are scrubbed of
  every secret found in the URL, and while the dispatcher runs a logging filter
  scrubs the records of Apprise and urllib3 too (their debug lines name the
  webhook path). :func:`redact_url` hides the password, any query value whose
  key names a secret (token, key, secret, pass, auth, sig; and HTTP headers
  ``+Name=value``) and every token-looking run of characters: 16 or more letters,
  digits, ``_`` or ``-`` with a digit among them, or 24 or more of them. A short
  all-letter token (an ntfy topic such as ``ntfy://alerts``) is not recognised.
* Apprise's own log lines below WARNING are dropped while the dispatcher runs,
  unless the ``apprise`` logger was given a level explicitly; its warnings (a
  failed send) come through, scrubbed.
* Apprise is used synchronously inside the channel's worker (no service timeout,
  no shared thread pool): a hanging endpoint is bounded by the URL's socket
  timeouts (Apprise's defaults: ``cto=4``, ``rto=4`` seconds; email ``cto=15``).
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import unquote, unquote_plus

import apprise

from roomwatch.core.clock import Clock

log = logging.getLogger(__name__)

Notify = Callable[[str, str, str], bool]
"""``notify(url, title, body) -> ok``: sends one message on one channel."""

SEVERITY_PRIORITY: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
"""Queue priority by severity; lower goes first."""

_HALT = -1  # priority of the item that stops a worker at once
_DRAIN = 1_000  # priority of the item that stops a worker once its queue is empty
_MASK = "***"

# Loggers whose records may name a channel's URL; the dispatcher scrubs them while it runs.
_SCRUBBED_LOGGERS = (
    "apprise",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    __name__,
)


@dataclass(frozen=True, slots=True)
class Notification:
    """One step of an alert's life, to be sent to every channel of a tier."""

    alert_id: str
    state: str  # raised | escalated | repeated | acknowledged | resolved
    severity: str  # info | warning | critical
    title: str
    body: str
    tier: int  # 1 = first recipients, 2 = escalation, ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at sending one notification on one channel: a line of the audit trail."""

    alert_id: str
    state: str
    tier: int  # the tier actually used (an unknown tier is sent to the highest one)
    channel: str  # the channel's URL with passwords and tokens redacted
    at: datetime  # from the injected clock, when the attempt's outcome was known
    ok: bool
    error: str | None
    attempt: int  # 1, 2, ...


# ---------------------------------------------------------------------------
# Redaction


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_RUN = re.compile(r"[A-Za-z0-9_\-]+")
_SECRET_KEY_PARTS = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "cred")


def _looks_like_token(run: str) -> bool:
    return len(run) >= 24 or (len(run) >= 16 and any(c.isdigit() for c in run))


def _secret_key(key: str) -> bool:
    if key.startswith("+"):  # an HTTP header for json://, xml://, form:// and friends
        return True
    name = key.lstrip("-:").lower()
    return any(part in name for part in _SECRET_KEY_PARTS)


def _redact(url: str) -> tuple[str, set[str]]:
    """Return the URL fit to store and show, and the secrets it hid."""
    secrets: set[str] = set()

    def hide_tokens(text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            run = match.group(0)
            if not _looks_like_token(run):
                return run
            secrets.add(run)
            return _MASK

        return _RUN.sub(replace, text)

    match = _SCHEME.match(url.strip())
    if match is None:
        if url:
            secrets.add(url)
        return "<not a URL>", secrets
    scheme, rest = match.group(1), match.group(2)
    rest, question, query = rest.partition("?")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    userinfo, at, hostport = authority.rpartition("@")

    out = [scheme, "://"]
    if at:
        user, colon, password = userinfo.partition(":")
        out.append(hide_tokens(user))
        if colon:
            out.append(":")
            if password:
                secrets.add(password)
                out.append(_MASK)
        out.append("@")
    out.append(hide_tokens(hostport))
    out.append(hide_tokens(path))
    if question:
        pairs = []
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            if equals and value and _secret_key(key):
                secrets.add(value)
                value = _MASK
            else:
                value = hide_tokens(value)
            pairs.append(f"{hide_tokens(key)}{equals}{value}")
        out.append("?" + "&".join(pairs))
    for secret in list(secrets):
        secrets.update({unquote(secret), unquote_plus(secret)})
    secrets.discard("")
    return "".join(out), secrets


def redact_url(url: str) -> str:
    """The URL with its password, secret query values and token-looking parts masked.

    >>> redact_url("json://user:s3cret@host/x")
    'json://user:***@host/x'
    """
    return _redact(url)[0]


class _Scrubber:
    """Replaces every known secret in a text with ``***``."""

    def __init__(self, secrets: set[str]) -> None:
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text


class _ScrubbingFilter(logging.Filter):
    """Scrubs secrets out of a logger's records; optionally drops those below WARNING."""

    def __init__(self, scrub: _Scrubber, quiet: logging.Logger | None = None) -> None:
        super().__init__()
        self._scrub = scrub
        self._quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            self._quiet is not None
            and record.levelno < logging.WARNING
            and self._quiet.level == logging.NOTSET
        ):
            return False
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's to report, not ours
            return True
        clean = self._scrub(message)
        trace = record.exc_text
        if trace is None and record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
        if trace:
            clean_trace = self._scrub(trace)
            if clean_trace != trace:
                clean = f"{clean}\n{clean_trace}"
                record.exc_info = None
                record.exc_text = None
        if clean != message:
            record.msg = clean
            record.args = None
        return True


# ---------------------------------------------------------------------------
# Sending

# (ok, error, worth retrying)
_Outcome = tuple[bool, str | None, bool]
_Send = Callable[[str, Notification], _Outcome]

_NOTIFY_TYPE = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
}
_PROBLEM_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL", "DEPRECATION WARNING"})


class _AppriseSender:
    """One channel's Apprise object, created once, used only by that channel's worker."""

    def __init__(self, url: str) -> None:
        # Synchronous, and no service timeout: with a timeout, Apprise runs the call in a
        # process-wide thread pool and abandons it there; our worker thread is the isolation.
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        self._apprise = apprise.Apprise(asset=asset)
        with warnings.catch_warnings():
            # The first URL makes Apprise import all its plugins; on Python 3.11 its email
            # plugin imports the deprecated imghdr module (for PGPy), which warns.
            warnings.filterwarnings(
                "ignore", message="'imghdr' is deprecated", category=DeprecationWarning
            )
            self.valid = bool(self._apprise.add(url))

    def __call__(self, url: str, n: Notification) -> _Outcome:
        if not self.valid:
            return False, "not a valid or supported Apprise URL", False
        if n.state == "resolved":
            notify_type = apprise.NotifyType.SUCCESS
        else:
            notify_type = _NOTIFY_TYPE.get(n.severity, apprise.NotifyType.FAILURE)
        with self._apprise.notify(
            body=n.body,
            title=n.title,
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.TEXT,
        ) as result:
            if result:
                return True, None, True
            problems = [entry.message for entry in result.logs() if entry.level in _PROBLEM_LEVELS]
            return False, "; ".join(problems) or f"Apprise reported {result.status.name}", True


def _custom_sender(notify: Notify) -> _Send:
    def send(url: str, n: Notification) -> _Outcome:
        if notify(url, n.title, n.body):
            return True, None, True
        return False, "the channel reported a failure", True

    return send


# ---------------------------------------------------------------------------
# The dispatcher


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
        self.send: _Send = _unusable
        self.queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def outranked(self, priority: int) -> bool:
        """Whether something more urgent than ``priority`` waits in the queue."""
        with self.queue.mutex:
            return bool(self.queue.queue) and self.queue.queue[0][0] < priority


def _unusable(url: str, n: Notification) -> _Outcome:
    return False, "channel not set up", False


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
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if first_retry_s < 0 or max_retry_s < 0:
            raise ValueError("retry delays cannot be negative")
        self._record = record
        self._clock = clock
        self._max_attempts = max_attempts
        self._first_retry_s = first_retry_s
        self._max_retry_s = max(max_retry_s, first_retry_s)

        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._pending = 0
        self._started = False
        self._stopping = False
        self._live_workers = 0
        self._halt = threading.Event()

        self._channels: dict[str, _Channel] = {}
        self._tiers: list[list[_Channel]] = []
        labels: set[str] = set()
        all_secrets: set[str] = set()
        for number, urls in enumerate(tiers, start=1):
            if isinstance(urls, str):
                raise TypeError(f"tier {number} must be a list of URLs, not one string")
            channels: list[_Channel] = []
            for url in urls:
                channel = self._channels.get(url)
                if channel is None:
                    label, secrets = _redact(url)
                    if label in labels:
                        label = f"{label} #{len(self._channels) + 1}"
                    labels.add(label)
                    all_secrets |= secrets
                    channel = _Channel(len(self._channels) + 1, url, label)
                    self._channels[url] = channel
                if channel not in channels:
                    channels.append(channel)
            self._tiers.append(channels)

        self._scrub = _Scrubber(all_secrets)
        self._filters = [
            (
                logging.getLogger(name),
                _ScrubbingFilter(
                    self._scrub, logging.getLogger(name) if name == "apprise" else None
                ),
            )
            for name in _SCRUBBED_LOGGERS
        ]
        self._filters_installed = False

        if notify is not None:
            custom = _custom_sender(notify)
            for channel in self._channels.values():
                channel.send = custom
            return
        self._install_filters()  # Apprise logs unusable URLs while parsing them
        try:
            for channel in self._channels.values():
                sender = _AppriseSender(channel.url)
                channel.send = sender
                if not sender.valid:
                    log.error(
                        "notification channel %s is not a valid or supported Apprise URL;"
                        " every delivery to it will fail",
                        channel.label,
                    )
        finally:
            self._remove_filters()

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
            self._install_filters()
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
        if busy:
            self._halt.set()
            for channel in self._channels.values():
                channel.queue.put_nowait((_HALT, next(self._seq), None))
                channel.wake.set()
            log.warning("delivery stopped with channels still busy: %s", ", ".join(busy))
        else:
            self._halt.set()
        with self._lock:
            undelivered = self._pending
            if self._live_workers == 0:
                self._remove_filters()
        if undelivered:
            log.warning("delivery stopped with %d channel deliveries not done", undelivered)
        else:
            log.info("delivery stopped")

    # -- submitting ---------------------------------------------------------

    def _submit(self, n: Notification) -> None:
        if not self._tiers:
            log.error(
                "no notification tiers configured: alert %s (%s) reaches nobody",
                n.alert_id,
                n.state,
            )
            return
        tier = n.tier
        if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= len(self._tiers):
            highest = len(self._tiers)
            log.warning(
                "alert %s (%s): tier %r is not configured; sending to tier %d, the highest",
                n.alert_id,
                n.state,
                tier,
                highest,
            )
            tier = highest
        channels = self._tiers[tier - 1]
        if not channels:
            log.error(
                "tier %d has no channels: alert %s (%s) reaches nobody", tier, n.alert_id, n.state
            )
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
                    self._remove_filters()

    def _deliver(self, channel: _Channel, job: _Job) -> None:
        n = job.notification
        while True:
            if job.attempt:
                verdict = self._wait_for_retry(channel, job)
                if verdict == "preempted":
                    channel.queue.put_nowait((job.priority, job.seq, job))
                if verdict != "go":
                    return
            job.attempt += 1
            try:
                ok, error, retryable = channel.send(channel.url, n)
            except Exception as e:  # noqa: BLE001 - any failure of a channel is an outcome
                ok, error, retryable = False, f"{type(e).__name__}: {e}", True
            if error is not None:
                error = self._scrub(error)
            final = ok or not retryable or job.attempt >= self._max_attempts
            attempt = Attempt(
                alert_id=n.alert_id,
                state=n.state,
                tier=job.tier,
                channel=channel.label,
                at=self._clock.now(),
                ok=ok,
                error=error,
                attempt=job.attempt,
            )
            delay = self._retry_delay(job.attempt)
            if ok:
                log.info(
                    "delivered %s %s of alert %s to %s (tier %d, attempt %d)",
                    n.severity,
                    n.state,
                    n.alert_id,
                    channel.label,
                    job.tier,
                    job.attempt,
                )
            elif final:
                log.error(
                    "gave up delivering %s of alert %s to %s after %d attempt(s): %s",
                    n.state,
                    n.alert_id,
                    channel.label,
                    job.attempt,
                    error,
                )
            else:
                log.warning(
                    "delivering %s of alert %s to %s failed (attempt %d of %d): %s; retry in %.3gs",
                    n.state,
                    n.alert_id,
                    channel.label,
                    job.attempt,
                    self._max_attempts,
                    error,
                    delay,
                )
            if final:
                self._finish(job)
            self._safe_record(attempt)
            if final or self._halt.is_set():
                return
            job.not_before = time.monotonic() + delay

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

    def _retry_delay(self, attempts_made: int) -> float:
        return float(min(self._first_retry_s * 2 ** (attempts_made - 1), self._max_retry_s))

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

    # -- logging ------------------------------------------------------------

    def _install_filters(self) -> None:
        if not self._filters_installed:
            for logger, log_filter in self._filters:
                logger.addFilter(log_filter)
            self._filters_installed = True

    def _remove_filters(self) -> None:
        if self._filters_installed:
            for logger, log_filter in self._filters:
                logger.removeFilter(log_filter)
            self._filters_installed = False
