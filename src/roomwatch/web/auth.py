"""Accounts, sign-in sessions, CSRF and API tokens.

Passwords are argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile).
Session cookies and API tokens are random 256-bit strings; only their SHA-256 is stored, so
a copy of the database does not let anyone in. A cookie session carries a CSRF token that
every change must echo (form field or header); an API token is sent as a bearer header,
which a browser never adds by itself, so it needs none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.database import as_utc
from roomwatch.collector.models import USER_ROLES, ApiToken, AppUser, WebSession
from roomwatch.collector.storage import UserExistsError

_hasher = PasswordHasher()
#: Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("roomwatch-no-such-user")
TOKEN_PREFIX = "rw_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD = 10

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


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def create_user(
    engine: Engine,
    username: str,
    display_name: str,
    role: str,
    password: str,
    by: str,
    now: datetime,
) -> AppUser:
    """A new user, with an audit entry; UserExistsError if the username is taken."""
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(USER_ROLES)}")
    if not username or len(username) > 150 or not username.isprintable() or " " in username:
        raise ValueError("a username is 1-150 printable characters without spaces")
    user = AppUser(
        id=uuid.uuid4().hex,
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        created_at=now,
    )

    def work(session: Session) -> AppUser:
        session.add(user)
        session.flush()
        return user

    try:
        return audit.in_transaction(
            engine,
            work,
            lambda u: [
                audit.Change(
                    by, "user.created", f"user:{u.id}", {"username": u.username, "role": u.role}
                )
            ],
            lambda: now,
        )
    except IntegrityError as exc:
        raise UserExistsError(f"a user named {username!r} exists") from exc


def _principal(user: AppUser, csrf: str | None) -> Principal:
    return Principal(user.id, user.username, user.display_name, user.role, csrf)


def sign_in(
    engine: Engine, username: str, password: str, hours: float, now: datetime
) -> tuple[str, Principal] | None:
    """A new session's cookie value and who it is, or None (wrong name or password)."""
    with Session(engine) as session:
        user = session.execute(
            select(AppUser).where(AppUser.username == username)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        stored = user.password_hash if user and not user.disabled else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or stored is None:
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session.add(
            WebSession(
                token_hash=_digest(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
        # Sessions past their time are dropped on each sign-in, so the table stays small.
        session.execute(delete(WebSession).where(WebSession.expires_at < now))  # type: ignore[arg-type]
        session.commit()
        return token, _principal(user, csrf)


def from_session(engine: Engine, token: str, now: datetime) -> Principal | None:
    with Session(engine) as session:
        row = session.get(WebSession, _digest(token))
        if row is None or as_utc(row.expires_at) <= now:
            return None
        user = session.get(AppUser, row.user_id)
        if user is None or user.disabled:
            return None
        return _principal(user, row.csrf_token)


def sign_out(engine: Engine, token: str) -> None:
    with Session(engine) as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))  # type: ignore[arg-type]
        session.commit()


def csrf_ok(principal: Principal, offered: str | None) -> bool:
    if principal.csrf_token is None:
        return True  # bearer token
    return offered is not None and hmac.compare_digest(principal.csrf_token, offered)


def issue_token(
    engine: Engine, user_id: str, name: str, by: str, now: datetime
) -> tuple[str, ApiToken]:
    """A new API token for ``user_id``: the secret (shown once) and its row."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=uuid.uuid4().hex,
        user_id=user_id,
        name=name,
        token_hash=_digest(secret),
        created_at=now,
    )

    def work(session: Session) -> ApiToken:
        if session.get(AppUser, user_id) is None:
            raise LookupError(f"no user {user_id!r}")
        session.add(row)
        session.flush()
        return row

    audit.in_transaction(
        engine,
        work,
        lambda r: [
            audit.Change(by, "token.issued", f"token:{r.id}", {"user": user_id, "name": name})
        ],
        lambda: now,
    )
    return secret, row


def revoke_token(engine: Engine, token_id: str, by: str, now: datetime) -> bool:
    def work(session: Session) -> bool:
        row = session.get(ApiToken, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = now
        session.add(row)
        return True

    return audit.in_transaction(
        engine,
        work,
        lambda done: [audit.Change(by, "token.revoked", f"token:{token_id}", {})] if done else [],
        lambda: now,
    )


def from_token(engine: Engine, secret: str, now: Callable[[], datetime]) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    with Session(engine) as session:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_hash == _digest(secret))  # type: ignore[arg-type]
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        user = session.get(AppUser, row.user_id)
        if user is None or user.disabled:
            return None
        at = now()
        # Written at most once a minute: a busy integration must not mean a write per request.
        if row.last_used_at is None or at - as_utc(row.last_used_at) > timedelta(minutes=1):
            row.last_used_at = at
            session.add(row)
            session.commit()
        return _principal(user, None)
