"""Issue 14, finding 7: /login is throttled per user and address, per address and per user,
on the collector's (virtual) clock; each lock is in the audit trail; an administrator lifts
it on the account page or with `roomwatch user unlock`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from roomwatch.cli.main import main
from roomwatch.collector.config import CollectorConfig, WebSettings
from roomwatch.collector.models import AuditEntry
from roomwatch.collector.service import Collector
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings
from roomwatch.web import throttle
from roomwatch.web.app import WebServer
from roomwatch.web.auth import create_user

PASSWORD = "the-right-password"


@dataclass
class Site:
    collector: Collector
    clock: VirtualClock
    url: str
    db: Path

    def client(self, address: str) -> httpx.Client:
        """A browser at ``address`` (named to the app by the trusted local proxy header)."""
        return httpx.Client(base_url=self.url, headers={"X-Forwarded-For": address}, timeout=10)

    def login(self, address: str, username: str, password: str) -> httpx.Response:
        with self.client(address) as client:
            return client.post("/login", data={"username": username, "password": password})

    def audit(self, action: str) -> list[AuditEntry]:
        with Session(self.collector.store.engine) as session:
            return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("throttle")
    # Starts at the wall clock's time: `roomwatch user unlock` (its own process, its own
    # clock) then sees the locks this clock made as in force.
    clock = VirtualClock(datetime.now(UTC))
    config = CollectorConfig(
        mqtt=MqttSettings(port=1),  # no broker: sign-in needs none
        database_url=f"sqlite:///{folder / 'c.db'}",
        http_port=None,
        web=WebSettings(port=0, vapid_key_file=folder / "vapid.pem"),
    )
    collector = Collector(config, clock)
    collector.open()
    engine = collector.store.engine
    for name, role in (("teacher", "staff"), ("boss", "admin"), ("other", "staff")):
        create_user(engine, name, name.title(), role, PASSWORD, "test", clock.now())
    web = WebServer(collector, config.web)
    web.start()
    try:
        yield Site(collector, clock, web.url, folder / "c.db")
    finally:
        web.stop()
        collector.stop()


def test_five_wrong_guesses_lock_the_pair_even_for_the_right_password(site: Site) -> None:
    for n in range(4):
        assert site.login("10.0.0.1", "teacher", f"guess-{n}").status_code == 401
    fifth = site.login("10.0.0.1", "teacher", "guess-4")
    assert fifth.status_code == 429 and "Too many failed sign-ins" in fifth.text
    right = site.login("10.0.0.1", "teacher", PASSWORD)
    assert right.status_code == 429, "the right password must not get through a lock"
    # The real teacher at another computer is not locked out by the guesser.
    assert site.login("10.0.0.2", "teacher", PASSWORD).status_code == 303

    (entry,) = [e for e in site.audit("sign_in.locked") if e.detail["address"] == "10.0.0.1"]
    assert entry.actor == "system" and entry.subject.startswith("user:")
    assert entry.detail["scope"] == "pair" and entry.detail["username"] == "teacher"

    site.clock.advance(5 * 60 + 1)  # the first lock lasts 5 minutes
    assert site.login("10.0.0.1", "teacher", PASSWORD).status_code == 303


def test_each_further_lock_lasts_twice_as_long(site: Site) -> None:
    for _ in range(2):
        for n in range(5):
            site.login("10.0.1.1", "other", f"guess-{n}")
        site.clock.advance(5 * 60 + 1)  # past a first lock, not past a second
    assert site.login("10.0.1.1", "other", PASSWORD).status_code == 429
    site.clock.advance(5 * 60)
    assert site.login("10.0.1.1", "other", PASSWORD).status_code == 303
    throttle.unlock(site.collector.store.engine, "test", site.clock.now(), username="other")


def test_many_names_from_one_address_lock_the_address(site: Site) -> None:
    for n in range(throttle.LIMITS["address"]):
        site.login("10.0.2.1", f"nobody-{n}", "guess")  # four per name: no pair lock
    assert site.login("10.0.2.1", "boss", PASSWORD).status_code == 429
    assert site.login("10.0.2.2", "boss", PASSWORD).status_code == 303
    assert any(e.subject == "address:10.0.2.1" for e in site.audit("sign_in.locked"))


def test_an_admin_lifts_a_lock_on_the_account_page(site: Site) -> None:
    for n in range(5):
        site.login("10.0.3.1", "teacher", f"guess-{n}")
    assert site.login("10.0.3.1", "teacher", PASSWORD).status_code == 429
    with site.client("10.0.3.9") as admin:
        assert (
            admin.post("/login", data={"username": "boss", "password": PASSWORD}).status_code == 303
        )
        page = admin.get("/account")
        assert "teacher from 10.0.3.1" in page.text
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        lifted = admin.post("/account/unlock", data={"username": "teacher", "csrf_token": csrf})
        assert lifted.status_code == 200 and "Lifted 1 lock(s)" in lifted.text
    assert site.login("10.0.3.1", "teacher", PASSWORD).status_code == 303
    (entry,) = [e for e in site.audit("sign_in.unlocked") if e.detail.get("address") == "10.0.3.1"]
    assert entry.actor != "system" and entry.subject.startswith("user:")


def test_a_staff_member_cannot_lift_locks(site: Site) -> None:
    with site.client("10.0.4.1") as staff:
        staff.post("/login", data={"username": "teacher", "password": PASSWORD})
        page = staff.get("/account")
        assert "Sign-in locks" not in page.text
        csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
        answer = staff.post("/account/unlock", data={"username": "x", "csrf_token": csrf})
        assert answer.status_code == 403


def test_roomwatch_user_unlock(site: Site) -> None:
    for n in range(5):
        site.login("10.0.5.1", "teacher", f"guess-{n}")
    assert site.login("10.0.5.1", "teacher", PASSWORD).status_code == 429
    result = CliRunner().invoke(main, ["user", "unlock", "teacher", "--db", f"sqlite:///{site.db}"])
    assert result.exit_code == 0, result.output
    assert "lifted 1 sign-in lock(s) on teacher" in result.output
    assert site.login("10.0.5.1", "teacher", PASSWORD).status_code == 303
    entries = [e for e in site.audit("sign_in.unlocked") if e.actor == "cli"]
    assert entries and json.dumps(entries[-1].detail)


def test_the_migrated_table_matches_the_model(site: Site) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with site.collector.store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diffs if "sign_in_throttle" in repr(d)] == []
