"""Web Push: alerts on staff phones even when the page is closed.

The collector's VAPID key pair is made on first start and kept in a file only the
collector's user can read. Browsers subscribe through the page; each alert step worth
waking someone for (a raised alert, a critical one escalating) is encrypted (RFC 8291,
by pywebpush) and posted to each subscriber's push service on a small thread pool, so a
slow push service never holds up the collector. Subscriptions the push service says are
gone (404, 410) are deleted.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import Engine

from roomwatch.collector import push_book
from roomwatch.collector.read.records import StoredPushSubscription
from roomwatch.core import rules, wire

log = logging.getLogger(__name__)

#: Roles whose subscriptions hear alerts (auditors read records; they are not on call).
ON_CALL_ROLES = ("staff", "admin")
TIMEOUT_S = 10


def load_or_create_key(path: Path) -> Vapid:
    """The VAPID key at ``path``, made (mode 0600) if there is none yet."""
    if path.exists():
        return Vapid.from_file(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Vapid()
    key.generate_keys()
    # Create the file private from the start; never world-readable, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_pem())
    log.info("made a Web Push (VAPID) key at %s", path)
    return key


def application_server_key(key: Vapid) -> str:
    """The public key as browsers want it for PushManager.subscribe (base64url, no padding)."""
    raw = key.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def worth_a_push(t: rules.Transition) -> bool:
    """Raised alerts, and critical ones escalating; acknowledgements are seen on the page."""
    if t.state is wire.AlertState.RAISED:
        return True
    return t.state is wire.AlertState.ESCALATED and t.alert.severity is wire.Severity.CRITICAL


def payload(t: rules.Transition) -> dict[str, Any]:
    a = t.alert
    return {
        "alert_id": a.alert_id,
        "title": f"{a.severity.value.upper()}: {a.type.value.replace('_', ' ')} in {a.room}",
        "body": a.message,
        "severity": a.severity.value,
        "state": t.state.value,
        "url": "/alerts",
    }


class PushSender:
    def __init__(self, engine: Engine, key: Vapid, subject: str) -> None:
        self._engine = engine
        self._key = key
        self._subject = subject
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web-push")
        self.sent = 0
        self.failed = 0

    def subscribe(self, user_id: str, endpoint: str, p256dh: str, auth: str, at: datetime) -> None:
        push_book.subscribe(self._engine, user_id, endpoint, p256dh, auth, at)

    def unsubscribe(self, user_id: str, endpoint: str) -> bool:
        return push_book.unsubscribe(self._engine, user_id, endpoint)

    def on_transitions(self, transitions: tuple[rules.Transition, ...]) -> None:
        """Called on a collector thread: queue the pushes, return at once."""
        for t in transitions:
            if worth_a_push(t):
                self._pool.submit(self._send_all, payload(t), t.alert.severity)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _send_all(self, message: dict[str, Any], severity: wire.Severity) -> None:
        try:
            subs = push_book.of_roles(self._engine, ON_CALL_ROLES)
            for sub in subs:
                self._send(sub, message, severity)
        except Exception:
            log.exception("Web Push delivery failed; the collector goes on")

    def _send(
        self, sub: StoredPushSubscription, message: dict[str, Any], severity: wire.Severity
    ) -> None:
        urgency = "high" if severity is wire.Severity.CRITICAL else "normal"
        try:
            webpush(
                {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                json.dumps(message),
                vapid_private_key=self._key,
                vapid_claims={"sub": self._subject},
                ttl=3600,
                timeout=TIMEOUT_S,
                headers={"Urgency": urgency},
            )
            self.sent += 1
        except WebPushException as exc:
            self.failed += 1
            status = exc.response.status_code if exc.response is not None else None
            if status in (404, 410):
                log.info("a push subscription has expired (%s); removing it", status)
                self.unsubscribe(sub.user_id, sub.endpoint)
                return
            self._note_error(sub, f"push service answered {status}: {exc}")
        except Exception as exc:  # noqa: BLE001 - network errors of every kind: note, go on
            self.failed += 1
            self._note_error(sub, str(exc))

    def _note_error(self, sub: StoredPushSubscription, error: str) -> None:
        log.warning("Web Push to %s failed: %s", _host(sub.endpoint), error)
        push_book.note_error(self._engine, sub.id, error)


def _host(endpoint: str) -> str:
    """The push service's host only: the full endpoint is a secret capability URL."""
    return endpoint.split("/")[2] if endpoint.count("/") >= 2 else "?"
