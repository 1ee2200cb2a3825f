"""The web app's tables from the collector's side: one way to make a user, with the strong
rules whoever calls it (page, command line, demo), and plain records out, never ORM rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

from roomwatch.collector import accounts, audit, push_book
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.read import people
from roomwatch.collector.read.records import StoredToken, StoredUser
from roomwatch.web import auth

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "a-long-enough-password"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    found = make_engine(f"sqlite:///{tmp_path / 'accounts.db'}")
    migrate(found)
    yield found
    found.dispose()


def test_the_web_app_makes_users_by_the_collectors_one_path() -> None:
    assert auth.create_user is accounts.create_user
    assert auth.UserExistsError is accounts.UserExistsError


@pytest.mark.parametrize(
    ("username", "role", "password", "says"),
    [
        ("ada", "staff", "short", "at least 10 characters"),
        ("ada lovelace", "staff", PASSWORD, "without spaces"),
        ("", "staff", PASSWORD, "1-150 printable"),
        ("ada", "superuser", PASSWORD, "is not one of"),
    ],
)
def test_a_user_breaking_a_rule_is_not_made(
    engine: Engine, username: str, role: str, password: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        accounts.create_user(engine, username, "Ada", role, password, "cli", NOW)
    assert people.users(engine) == []
    assert list(audit.entries(engine)) == []


def test_a_made_user_is_a_plain_record_audited_once_and_named_once(engine: Engine) -> None:
    made = accounts.create_user(engine, "ada", "", "admin", PASSWORD, "cli", NOW)
    assert isinstance(made, StoredUser) and not isinstance(made, SQLModel)
    assert (made.username, made.display_name, made.role, made.created_at) == (
        "ada",
        "ada",
        "admin",
        NOW,
    )
    with pytest.raises(accounts.UserExistsError):
        accounts.create_user(engine, "ada", "Another", "staff", PASSWORD, "cli", NOW)
    assert people.users(engine) == [made]
    assert [(e.action, e.actor) for e in audit.entries(engine)] == [("user.created", "cli")]


def test_a_password_opens_only_its_own_live_account(engine: Engine) -> None:
    made = accounts.create_user(engine, "ada", "Ada", "staff", PASSWORD, "cli", NOW)
    assert accounts.check_password(engine, "ada", PASSWORD) == made
    assert accounts.check_password(engine, "ada", PASSWORD + "x") is None
    assert accounts.check_password(engine, "nobody", PASSWORD) is None


def test_sessions_and_tokens_are_found_by_their_hash_until_they_end(engine: Engine) -> None:
    made = accounts.create_user(engine, "ada", "Ada", "staff", PASSWORD, "cli", NOW)
    accounts.open_session(engine, "s" * 64, made.id, "csrf", NOW, NOW + timedelta(hours=1))
    assert accounts.session_user(engine, "s" * 64, NOW) == (made, "csrf")
    assert accounts.session_user(engine, "s" * 64, NOW + timedelta(hours=1)) is None
    accounts.close_session(engine, "s" * 64)
    assert accounts.session_user(engine, "s" * 64, NOW) is None

    token = accounts.add_token(engine, "t" * 64, made.id, "laptop", made.id, NOW)
    assert isinstance(token, StoredToken)
    assert accounts.token_user(engine, "t" * 64, lambda: NOW) == made
    assert people.tokens(engine)[0].last_used_at == NOW
    assert accounts.revoke_token(engine, token.id, made.id, NOW)
    assert accounts.token_user(engine, "t" * 64, lambda: NOW) is None
    with pytest.raises(LookupError):
        accounts.add_token(engine, "u" * 64, "no-such-user", "x", made.id, NOW)


def test_push_subscriptions_of_on_call_roles_only(engine: Engine) -> None:
    staff = accounts.create_user(engine, "ada", "Ada", "staff", PASSWORD, "cli", NOW)
    auditor = accounts.create_user(engine, "bob", "Bob", "auditor", PASSWORD, "cli", NOW)
    push_book.subscribe(engine, staff.id, "https://push.example/a", "k" * 20, "a" * 8, NOW)
    push_book.subscribe(engine, auditor.id, "https://push.example/b", "k" * 20, "a" * 8, NOW)
    found = push_book.of_roles(engine, ("staff", "admin"))
    assert [(s.user_id, s.endpoint) for s in found] == [(staff.id, "https://push.example/a")]
    assert not push_book.unsubscribe(engine, auditor.id, "https://push.example/a")
    assert push_book.unsubscribe(engine, staff.id, "https://push.example/a")
    assert push_book.of_roles(engine, ("staff", "admin")) == []
