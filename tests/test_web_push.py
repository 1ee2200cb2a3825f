"""Web Push end to end: a browser's subscription (keys made here, as a browser would), a
local stand-in for the push service, and the encrypted message decrypted with the
subscriber's private key."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlmodel import Session, select

from conftest import wait_until
from roomwatch.collector.models import PushSubscription
from roomwatch.web.auth import issue_token
from web_stack import WebStack


class PushService:
    """Receives what a push service would; answers 201, or 410 for endpoints marked gone."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.gone: set[str] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(410 if self.path in owner.gone else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class BrowserKeys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self, endpoint: str) -> dict[str, object]:
        point = self.private.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, str]:
        plain = http_ece.decrypt(
            body, private_key=self.private, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)  # type: ignore[no-any-return]


def api_as(stack: WebStack, username: str) -> httpx.Client:
    secret, _ = issue_token(
        stack.collector.store.engine, stack.user_ids[username], "t", "test", datetime.now(UTC)
    )
    client = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {secret}"})
    stack.closers.append(client.close)
    return client


def test_an_alert_reaches_a_subscribed_phone_encrypted(
    web_stack: WebStack, push_service: PushService
) -> None:
    staff, auditor = BrowserKeys(), BrowserKeys()
    key = api_as(web_stack, "sam").get("/api/v1/push/key").json()["application_server_key"]
    assert key and len(base64.urlsafe_b64decode(key + "==")) == 65  # an uncompressed P-256 point
    answer = api_as(web_stack, "sam").post(
        "/api/v1/push/subscriptions", json=staff.subscription(push_service.endpoint("staff"))
    )
    assert answer.status_code == 204, answer.text
    # Auditors read records; they are not on call and get no pushes (and may not subscribe).
    refused = api_as(web_stack, "aud").post(
        "/api/v1/push/subscriptions", json=auditor.subscription(push_service.endpoint("aud"))
    )
    assert refused.status_code == 403

    agent = web_stack.agent()
    agent.status()
    agent.telemetry(occupied=True, door_closed=True, door_locked=True, lock_permit=False)
    assert wait_until(lambda: len(push_service.received) >= 1, 10)

    path, headers, body = push_service.received[0]
    assert path == "/staff"
    assert headers["urgency"] == "high"
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["authorization"].startswith("vapid t=")
    assert b"door" not in body  # encrypted: the push service learns nothing
    message = staff.decrypt(body)
    assert message["severity"] == "critical"
    assert "door locked while occupied" in message["title"]
    assert message["url"] == "/alerts"


def test_a_subscription_the_push_service_says_is_gone_is_removed(
    web_stack: WebStack, push_service: PushService
) -> None:
    phone = BrowserKeys()
    push_service.gone.add("/old-phone")
    api = api_as(web_stack, "sam")
    sub = phone.subscription(push_service.endpoint("old-phone"))
    assert api.post("/api/v1/push/subscriptions", json=sub).status_code == 204

    def count() -> int:
        with Session(web_stack.collector.store.engine) as session:
            return len(list(session.execute(select(PushSubscription)).scalars()))

    assert count() == 1
    agent = web_stack.agent()
    agent.status()
    agent.telemetry(occupied=True, door_closed=True, door_locked=True, lock_permit=False)
    assert wait_until(lambda: count() == 0, 10)
    assert [p for p, _, _ in push_service.received] == ["/old-phone"]
