"""The web app's accounts in the database: users, sign-in sessions and API tokens.

The one way a user is made (:func:`create_user`, with the rules for names, roles and
passwords), for the web page and the command line alike. Secrets never come here: sessions
and tokens are stored and found by the SHA-256 the web app (web/auth.py) makes of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from roomwatch.collector import audit, passwords
from roomwatch.collector.database import as_utc
from roomwatch.collector.models import USER_ROLES, ApiToken, AppUser, WebSession
from roomwatch.collector.read.records import StoredToken, StoredUser, stored

#: A token's last use is written at most this often: a busy integration must not mean a
#: write per request.
LAST_USED_EVERY = timedelta(minutes=1)


class UserExistsError(ValueError):
    """A user with that id or username is already stored."""


def _check(username: str, role: str) -> None:
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(USER_ROLES)}")
    if not username or len(username) > 150 or not username.isprintable() or " " in username:
        raise ValueError("a username is 1-150 printable characters without spaces")


def create_user(
    engine: Engine,
    username: str,
    display_name: str,
    role: str,
    password: str,
    by: str,
    now: datetime,
) -> StoredUser:
    """A new user, with an audit entry as ``by``; ValueError for a bad name, role or
    password, UserExistsError (a ValueError too) if the username is taken."""
    _check(username, role)
    user = AppUser(
        id=uuid.uuid4().hex,
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=passwords.hash_password(password),
        created_at=now,
    )

    def work(session: Session) -> StoredUser:
        session.add(user)
        session.flush()
        return stored(StoredUser, user)

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


def _active(user: AppUser | None) -> StoredUser | None:
    return None if user is None or user.disabled else stored(StoredUser, user)


def _named(session: Session, username: str) -> AppUser | None:
    return session.execute(
        select(AppUser).where(AppUser.username == username)  # type: ignore[arg-type]
    ).scalar_one_or_none()


def user_named(engine: Engine, username: str) -> StoredUser | None:
    with Session(engine) as session:
        user = _named(session, username)
        return None if user is None else stored(StoredUser, user)


def check_password(engine: Engine, username: str, password: str) -> StoredUser | None:
    """The user, if ``username`` names one not disabled and ``password`` is theirs; the
    same work (one hash check) whichever way it fails."""
    with Session(engine) as session:
        user = _named(session, username)
        active = _active(user)
        hashed = user.password_hash if user is not None and active is not None else None
    return active if passwords.matches(hashed, password) else None


def open_session(
    engine: Engine, token_hash: str, user_id: str, csrf: str, now: datetime, until: datetime
) -> None:
    """Store a sign-in session; sessions past their time go at the same moment, so the
    table stays small."""
    with Session(engine) as session:
        session.add(
            WebSession(
                token_hash=token_hash,
                user_id=user_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=until,
            )
        )
        session.execute(delete(WebSession).where(WebSession.expires_at < now))  # type: ignore[arg-type]
        session.commit()


def session_user(engine: Engine, token_hash: str, now: datetime) -> tuple[StoredUser, str] | None:
    """Who a live session belongs to (not a disabled user) and its CSRF token, or None."""
    with Session(engine) as session:
        row = session.get(WebSession, token_hash)
        if row is None or as_utc(row.expires_at) <= now:
            return None
        user = _active(session.get(AppUser, row.user_id))
        return None if user is None else (user, row.csrf_token)


def close_session(engine: Engine, token_hash: str) -> None:
    with Session(engine) as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))  # type: ignore[arg-type]
        session.commit()


def add_token(
    engine: Engine, token_hash: str, user_id: str, name: str, by: str, now: datetime
) -> StoredToken:
    """Store a new API token for ``user_id`` (LookupError if there is no such user),
    audited as ``by``."""
    row = ApiToken(
        id=uuid.uuid4().hex, user_id=user_id, name=name, token_hash=token_hash, created_at=now
    )

    def work(session: Session) -> StoredToken:
        if session.get(AppUser, user_id) is None:
            raise LookupError(f"no user {user_id!r}")
        session.add(row)
        session.flush()
        return stored(StoredToken, row)

    return audit.in_transaction(
        engine,
        work,
        lambda t: [
            audit.Change(by, "token.issued", f"token:{t.id}", {"user": user_id, "name": name})
        ],
        lambda: now,
    )


def revoke_token(engine: Engine, token_id: str, by: str, now: datetime) -> bool:
    """Revoke a live token (audited); False if there is none with that id."""

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


def token_user(engine: Engine, token_hash: str, now: Callable[[], datetime]) -> StoredUser | None:
    """Who a live token belongs to (not a disabled user), noting its use; or None (the
    clock is read only for a live token)."""
    with Session(engine) as session:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        user = _active(session.get(AppUser, row.user_id))
        if user is None:
            return None
        at = now()
        if row.last_used_at is None or at - as_utc(row.last_used_at) > LAST_USED_EVERY:
            row.last_used_at = at
            session.add(row)
            session.commit()
        return user
