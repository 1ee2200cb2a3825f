"""Delivery of alert notifications to staff channels, through real Apprise and real HTTP.

A local HTTP server stands in for the staff devices' gateways: Apprise's own
``json://`` channel posts to it, and each path can be told to fail with a status
code or to hang until released. Tests wait on conditions, never on the clock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import free_port
from roomwatch.collector.delivery import Attempt, Dispatcher, Notification, redact_url
from roomwatch.core.clock import VirtualClock

WAIT = 10.0  # seconds a test waits for something that should happen in milliseconds


class Receiver:
    """An HTTP endpoint on 127.0.0.1; per path, scripted status codes and an optional gate."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.statuses: dict[str, list[int]] = {}  # popped one per request, then 200
        self.gates: dict[str, threading.Event] = {}  # the request waits until the gate is set
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with receiver.cond:
                    receiver.requests.append((path, payload))
                    receiver.cond.notify_all()
                    gate = receiver.gates.get(path)
                    scripted = receiver.statuses.get(path)
                    status = scripted.pop(0) if scripted else 200
                if gate is not None:
                    gate.wait(WAIT * 3)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str, query: str = "") -> str:
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def gate(self, path: str) -> threading.Event:
        with self.cond:
            return self.gates.setdefault(path, threading.Event())

    def script(self, path: str, *statuses: int) -> None:
        with self.cond:
            self.statuses[path] = list(statuses)

    def wait_for(self, predicate: Callable[[list[tuple[str, dict[str, Any]]]], bool]) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.requests), WAIT), self.requests

    def titles(self, path: str) -> list[str]:
        with self.cond:
            return [str(payload.get("title")) for p, payload in self.requests if p == path]

    def release(self) -> None:
        with self.cond:
            gates = list(self.gates.values())
        for gate in gates:
            gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)


class Recorder:
    """The ``record`` callback: keeps every attempt; may be told to raise a few times."""

    def __init__(self, raise_first: int = 0) -> None:
        self.cond = threading.Condition()
        self.attempts: list[Attempt] = []
        self._raise_left = raise_first

    def __call__(self, attempt: Attempt) -> None:
        with self.cond:
            self.attempts.append(attempt)
            self.cond.notify_all()
            if self._raise_left:
                self._raise_left -= 1
                raise RuntimeError("the database is away")

    def wait_for(self, predicate: Callable[[list[Attempt]], bool]) -> list[Attempt]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.attempts), WAIT), self.attempts
            return list(self.attempts)

    def of(self, alert_id: str) -> list[Attempt]:
        with self.cond:
            return [a for a in self.attempts if a.alert_id == alert_id]


def note(
    alert_id: str = "alert-1",
    severity: str = "critical",
    state: str = "raised",
    tier: int = 1,
    title: str | None = None,
) -> Notification:
    return Notification(
        alert_id=alert_id,
        state=state,
        severity=severity,
        title=title or f"{alert_id} {state}",
        body=f"Room 101: door locked while occupied ({alert_id})",
        tier=tier,
    )


def count(alert_id: str, n: int = 1, ok: bool | None = None) -> Callable[[list[Attempt]], bool]:
    def predicate(attempts: list[Attempt]) -> bool:
        mine = [a for a in attempts if a.alert_id == alert_id and (ok is None or a.ok is ok)]
        return len(mine) >= n

    return predicate


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


Make = Callable[..., Dispatcher]


@pytest.fixture
def make(receiver: Receiver, clock: VirtualClock) -> Iterator[Make]:
    made: list[Dispatcher] = []

    def make_dispatcher(tiers: list[list[str]], record: Recorder, **kwargs: Any) -> Dispatcher:
        kwargs.setdefault("first_retry_s", 0.01)
        d = Dispatcher(tiers, record, clock, **kwargs)
        made.append(d)
        return d

    yield make_dispatcher
    receiver.release()
    for d in made:
        d.stop(timeout=WAIT)


def test_a_critical_notification_reaches_the_phone_gateway(
    receiver: Receiver, make: Make, clock: VirtualClock
) -> None:
    record = Recorder()
    d = make([[receiver.url("/phones/nurse")]], record)
    d.start()
    d.submit(note("a1", title="Room 101: door locked while occupied"))

    (attempt,) = record.wait_for(count("a1"))
    assert attempt == Attempt(
        alert_id="a1",
        state="raised",
        tier=1,
        channel=f"json://127.0.0.1:{receiver.port}/phones/nurse",
        at=clock.now(),
        ok=True,
        error=None,
        attempt=1,
    )
    ((path, payload),) = receiver.requests
    assert path == "/phones/nurse"
    assert payload["title"] == "Room 101: door locked while occupied"
    assert payload["message"] == "Room 101: door locked while occupied (a1)"
    assert payload["type"] == "failure"  # Apprise's most urgent type
    d.stop()
    assert d.pending == 0


def test_a_failing_channel_is_retried_until_it_succeeds(receiver: Receiver, make: Make) -> None:
    receiver.script("/flaky", 500, 500)
    record = Recorder()
    d = make([[receiver.url("/flaky")]], record, first_retry_s=0.01)
    d.start()
    d.submit(note("a1"))

    attempts = record.wait_for(count("a1", ok=True))
    assert [(a.attempt, a.ok) for a in attempts] == [(1, False), (2, False), (3, True)]
    assert all("500" in (a.error or "") for a in attempts[:2])
    assert attempts[2].error is None
    assert len(receiver.titles("/flaky")) == 3


def test_a_hanging_channel_does_not_delay_another(receiver: Receiver, make: Make) -> None:
    receiver.gate("/stuck")
    record = Recorder()
    stuck, fast = receiver.url("/stuck", "rto=30"), receiver.url("/fast")
    d = make([[stuck, fast]], record)
    d.start()
    started = time.monotonic()
    d.submit(note("a1"))
    assert time.monotonic() - started < 0.5  # submit only queues

    receiver.wait_for(lambda requests: any(p == "/stuck" for p, _ in requests))
    (delivered,) = record.wait_for(count("a1", ok=True))
    assert delivered.channel == f"json://127.0.0.1:{receiver.port}/fast"
    assert d.pending == 1  # the stuck channel is still on it


def test_a_dead_channel_gives_up_and_the_dispatcher_carries_on(
    receiver: Receiver, make: Make
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    record = Recorder()
    d = make([[dead], [receiver.url("/office")]], record, max_attempts=3)
    d.start()
    d.submit(note("a1"))

    attempts = record.wait_for(count("a1", n=3))
    assert [(a.attempt, a.ok) for a in attempts] == [(1, False), (2, False), (3, False)]
    assert all(a.error and "connection" in a.error.lower() for a in attempts)

    d.submit(note("a2", tier=2))
    record.wait_for(count("a2", ok=True))
    d.submit(note("a3"))  # the dead channel's worker is still there, trying again
    assert [a.attempt for a in record.wait_for(count("a3", n=3)) if a.alert_id == "a3"] == [
        1,
        2,
        3,
    ]
    d.stop()
    assert d.pending == 0
    assert len(record.of("a1")) == 3


def test_critical_jumps_ahead_of_warnings_on_a_busy_channel(receiver: Receiver, make: Make) -> None:
    gate = receiver.gate("/busy")
    record = Recorder()
    d = make([[receiver.url("/busy", "rto=30")]], record)
    d.start()
    d.submit(note("w0", severity="warning"))
    receiver.wait_for(lambda requests: len(requests) == 1)  # w0 is on the wire, blocked
    for alert_id in ("w1", "w2"):
        d.submit(note(alert_id, severity="warning"))
    d.submit(note("c1", severity="critical"))
    d.submit(note("w3", severity="info"))
    assert d.pending == 5
    gate.set()

    attempts = record.wait_for(lambda attempts: len(attempts) == 5)
    assert [a.alert_id for a in attempts] == ["w0", "c1", "w1", "w2", "w3"]
    assert receiver.titles("/busy") == [
        "w0 raised",
        "c1 raised",
        "w1 raised",
        "w2 raised",
        "w3 raised",
    ]


def test_critical_does_not_wait_behind_a_warning_waiting_to_retry(
    receiver: Receiver, make: Make
) -> None:
    receiver.script("/p", 500)
    record = Recorder()
    d = make([[receiver.url("/p")]], record, first_retry_s=30)
    d.start()
    d.submit(note("w1", severity="warning"))
    record.wait_for(count("w1"))
    d.submit(note("c1", severity="critical"))

    record.wait_for(count("c1", ok=True))
    assert [(a.alert_id, a.ok) for a in record.attempts] == [("w1", False), ("c1", True)]
    started = time.monotonic()
    d.stop(timeout=0.2)  # cuts the 30 s wait short
    assert time.monotonic() - started < 2
    assert d.pending == 1  # w1 was not delivered


def test_redact_url() -> None:
    assert redact_url("json://user:secret@host/x") == "json://user:***@host/x"
    assert redact_url("mailto://alice:pa55word@gmail.com") == "mailto://alice:***@gmail.com"
    assert (
        redact_url("pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi")
        == "pover://***@***"
    )
    assert (
        redact_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general")
        == "slack://T1JJ3T3L2/A1BRTD4JD/***/#general"
    )
    assert (
        redact_url("ntfy://staff:pw@ntfy.lincoln.example/roomwatch-7f3a9c2e41")
        == "ntfy://staff:***@ntfy.lincoln.example/***"
    )
    assert (
        redact_url("jsons://hooks.example/x?token=abc&+Authorization=Bearer%20xyz&method=POST")
        == "jsons://hooks.example/x?token=***&+Authorization=***&method=POST"
    )
    assert redact_url("json://127.0.0.1:8080/alerts") == "json://127.0.0.1:8080/alerts"
    assert redact_url("not a url with s3cret") == "<not a URL>"


def test_redact_url_hides_what_apprise_calls_secret_however_short() -> None:
    # Keys no token rule recognises (short, all letters): Apprise's plugins know them.
    assert redact_url("line://shortsecrettoken/U1234") == "line://***/U1234"
    assert redact_url("pagerduty://intkey@apikey") == "pagerduty://***@***"
    assert redact_url("viber://abcdefgh") == "viber://***"
    # A URL Apprise cannot parse: the rules alone, and still no secret shown.
    assert (
        redact_url("nosuchscheme://u:pw@h/Zx81Kq7mP2vL9wT4nR6sYb") == "nosuchscheme://u:***@h/***"
    )


def test_secrets_never_reach_the_record_or_the_logs(
    receiver: Receiver, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")  # Apprise's debug lines name the URL
    password, token = "S3cr3t-Pw", "Zx81Kq7mP2vL9wT4nR6sYb"
    receiver.script(f"/hooks/{token}", 500)
    good = f"json://roomwatch:{password}@127.0.0.1:{receiver.port}/hooks/{token}"
    dead = f"json://roomwatch:{password}@127.0.0.1:{free_port()}/hooks/{token}"
    record = Recorder()
    d = make([[good], [dead]], record, max_attempts=2)
    d.start()
    d.submit(note("a1"))
    d.submit(note("a2", tier=2))
    record.wait_for(count("a1", ok=True))
    record.wait_for(count("a2", n=2))
    d.stop()

    assert "JSON POST URL" in caplog.text  # the risky lines were there, and were scrubbed
    assert f"/hooks/{token}" in "".join(p for p, _ in receiver.requests)
    for attempt in record.attempts:
        assert attempt.channel.startswith("json://roomwatch:***@127.0.0.1:")
        assert attempt.channel.endswith("/hooks/***")
        for text in (attempt.channel, attempt.error or ""):
            assert password not in text
            assert token not in text
    assert password not in caplog.text
    assert token not in caplog.text


def test_apprise_is_quiet_unless_a_send_fails(
    receiver: Receiver, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script("/later", 503)
    record = Recorder()
    d = make([[receiver.url("/now")], [receiver.url("/later")]], record)
    d.start()
    d.submit(note("a1"))
    record.wait_for(count("a1", ok=True))
    assert [r for r in caplog.records if r.name == "apprise"] == []

    d.submit(note("a2", tier=2))
    record.wait_for(count("a2", ok=True))
    from_apprise = [r for r in caplog.records if r.name == "apprise"]
    assert from_apprise
    assert all(r.levelno >= logging.WARNING for r in from_apprise)
    assert "503" in from_apprise[0].getMessage()


def test_a_record_callback_that_raises_does_not_kill_the_worker(
    receiver: Receiver, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    record = Recorder(raise_first=1)
    d = make([[receiver.url("/phone")]], record)
    d.start()
    d.submit(note("a1"))
    d.submit(note("a2"))

    attempts = record.wait_for(lambda attempts: len(attempts) == 2)
    assert [(a.alert_id, a.ok) for a in attempts] == [("a1", True), ("a2", True)]
    assert "recording a delivery attempt failed" in caplog.text
    assert len(receiver.requests) == 2  # not resent because recording failed


def test_stop_returns_within_its_timeout_with_a_hung_channel(
    receiver: Receiver, make: Make
) -> None:
    receiver.gate("/stuck")
    record = Recorder()
    d = make([[receiver.url("/stuck", "rto=30"), receiver.url("/fast")]], record)
    d.start()
    d.submit(note("a1"))
    receiver.wait_for(lambda requests: any(p == "/stuck" for p, _ in requests))
    record.wait_for(count("a1", ok=True))

    started = time.monotonic()
    d.stop(timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert d.pending == 1
    d.submit(note("a2"))  # after stop: dropped, logged, no exception
    assert d.pending == 1


def test_an_unknown_tier_goes_to_the_highest_tier(
    receiver: Receiver, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    record = Recorder()
    d = make([[receiver.url("/first")], [receiver.url("/escalation")]], record)
    d.start()
    d.submit(note("a1", tier=7))

    (attempt,) = record.wait_for(count("a1", ok=True))
    assert attempt.tier == 2
    assert attempt.channel.endswith("/escalation")
    assert "tier 7 is not configured" in caplog.text
    d.stop()
    assert receiver.titles("/first") == []


def test_an_unusable_url_fails_once_without_retries(receiver: Receiver, make: Make) -> None:
    record = Recorder()
    d = make([["nosuchscheme://x/y"], [receiver.url("/office")]], record)
    d.start()
    d.submit(note("a1"))
    d.stop()
    (attempt,) = record.attempts
    assert (attempt.ok, attempt.attempt, attempt.channel) == (False, 1, "nosuchscheme://x/y")
    assert attempt.error == "not a valid or supported Apprise URL"


class Gateway:
    """A stand-in channel for ``notify``: fails a few times, saying the URL in its error."""

    def __init__(self, fail_first: int) -> None:
        self.fail_left = fail_first
        self.sent: list[tuple[str, str, str]] = []

    def __call__(self, url: str, title: str, body: str) -> bool:
        if self.fail_left:
            self.fail_left -= 1
            if self.fail_left % 2:
                raise ConnectionError(f"cannot reach {url}")
            return False
        self.sent.append((url, title, body))
        return True


def test_an_injected_notify_is_retried_and_its_errors_scrubbed(make: Make) -> None:
    url = "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi"
    gateway = Gateway(fail_first=2)
    record = Recorder()
    d = make([[url]], record, notify=gateway)
    d.start()
    d.submit(note("a1"))

    attempts = record.wait_for(count("a1", ok=True))
    assert [(a.ok, a.error) for a in attempts] == [
        (False, "ConnectionError: cannot reach pover://***@***"),
        (False, "the channel reported a failure"),
        (True, None),
    ]
    assert gateway.sent == [(url, "a1 raised", "Room 101: door locked while occupied (a1)")]


def test_a_key_only_apprise_knows_is_scrubbed_from_errors(make: Make) -> None:
    url = "viber://abcdefgh"
    record = Recorder()
    d = make([[url]], record, notify=Gateway(fail_first=2))
    d.start()
    d.submit(note("a1"))

    attempts = record.wait_for(count("a1", ok=True))
    assert {a.channel for a in attempts} == {"viber://***"}
    assert attempts[0].error == "ConnectionError: cannot reach viber://***"
