"""Who is asking: sign-in sessions, CSRF and API tokens, and what each role may do.

Session cookies and API tokens are random 256-bit strings; only their SHA-256 is stored (by
collector/accounts.py, which also hashes passwords), so a copy of the database does not let
anyone in. A cookie session carries a CSRF token that every change must echo (form field or
header); an API token is sent as a bearer header, which a browser never adds by itself, so
it needs none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from roomwatch.collector import accounts

# The one way a user is made, re-exported for the command line and the demo until they
# import it from collector/accounts.py themselves.
from roomwatch.collector.accounts import UserExistsError as UserExistsError
from roomwatch.collector.accounts import create_user as create_user
from roomwatch.collector.read.records import StoredToken, StoredUser

TOKEN_PREFIX = "rw_"  # noqa: S105 - a marker, not a secret

#: What each role may do. Auditors read everything and change nothing.
CAN_CHANGE = {"staff": {"acknowledge", "record", "push"}, "admin": {"*"}, "auditor": set()}
CAN_READ_AUDIT = {"admin", "auditor"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request, and how they proved it."""

    user_id: str
    username: str
    display_name: str
    role: str
    csrf_token: str | None  # None for API tokens: no cookie, so no CSRF

    def may(self, action: str) -> bool:
        allowed = CAN_CHANGE.get(self.role, set())
        return "*" in allowed or action in allowed


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(user: StoredUser, csrf: str | None) -> Principal:
    return Principal(user.id, user.username, user.display_name, user.role, csrf)


def sign_in(
    engine: Engine, username: str, password: str, hours: float, now: datetime
) -> tuple[str, Principal] | None:
    """A new session's cookie value and who it is, or None (wrong name or password)."""
    user = accounts.check_password(engine, username, password)
    if user is None:
        return None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    accounts.open_session(engine, _digest(token), user.id, csrf, now, now + timedelta(hours=hours))
    return token, _principal(user, csrf)


def from_session(engine: Engine, token: str, now: datetime) -> Principal | None:
    found = accounts.session_user(engine, _digest(token), now)
    return None if found is None else _principal(*found)


def sign_out(engine: Engine, token: str) -> None:
    accounts.close_session(engine, _digest(token))


def csrf_ok(principal: Principal, offered: str | None) -> bool:
    if principal.csrf_token is None:
        return True  # bearer token
    return offered is not None and hmac.compare_digest(principal.csrf_token, offered)


def issue_token(
    engine: Engine, user_id: str, name: str, by: str, now: datetime
) -> tuple[str, StoredToken]:
    """A new API token for ``user_id``: the secret (shown once) and what is stored of it."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, accounts.add_token(engine, _digest(secret), user_id, name, by, now)


def revoke_token(engine: Engine, token_id: str, by: str, now: datetime) -> bool:
    return accounts.revoke_token(engine, token_id, by, now)


def from_token(engine: Engine, secret: str, now: Callable[[], datetime]) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    user = accounts.token_user(engine, _digest(secret), now)
    return None if user is None else _principal(user, None)
