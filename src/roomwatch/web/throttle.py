"""Sign-in throttling: guessing passwords at /login is slowed to a crawl, and audited.

Failed sign-ins are counted three ways, each in a window of ``WINDOW`` (15 minutes):

* per user name *and* address: 5 failures lock that pair; the person at another computer
  (the real teacher, say) can still sign in;
* per address: 20 failures, whatever the names, lock the address (one machine trying many
  names);
* per user name: 50 failures, from any addresses, lock the name everywhere (a guesser
  spread over many machines).

A lock lasts ``FIRST_LOCK`` (5 minutes), twice as long for each further lock in a row, up to
``LONGEST_LOCK`` (4 hours); while locked, no password is even checked. A successful
sign-in clears its pair. Each lock is written to the audit trail; an administrator can lift
one (account page, or ``roomwatch user unlock NAME``), which is audited too. Time is the
collector's clock, so tests run it on the virtual clock. The counts live in the database:
every web process sees them and a restart forgets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.database import as_utc
from roomwatch.collector.models import AppUser, SignInThrottle

WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(minutes=5)
LONGEST_LOCK = timedelta(hours=4)
#: Failures within WINDOW that earn a lock, per scope.
LIMITS = {"pair": 5, "address": 20, "user": 50}

_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Lock:
    scope: str  # pair, address or user
    username: str | None
    address: str | None
    until: datetime

    def describe(self, now: datetime) -> str:
        minutes = max(1, round((self.until - now).total_seconds() / 60))
        return (
            f"Too many failed sign-ins: try again in {minutes} minute(s), or ask an "
            "administrator to lift the lock."
        )


def _keys(username: str, address: str) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        "pair": (f"pair{_SEP}{username}{_SEP}{address}", username, address),
        "address": (f"address{_SEP}{address}", None, address),
        "user": (f"user{_SEP}{username}", username, None),
    }


def _lock_of(row: SignInThrottle, now: datetime) -> Lock | None:
    if row.locked_until is None or as_utc(row.locked_until) <= now:
        return None
    return Lock(row.scope, row.username, row.address, as_utc(row.locked_until))


def locked(engine: Engine, username: str, address: str, now: datetime) -> Lock | None:
    """The lock (the longest, if several) that stops ``username`` signing in from
    ``address`` now, or None."""
    keys = [key for key, _, _ in _keys(username, address).values()]
    with Session(engine) as session:
        rows = session.execute(
            select(SignInThrottle).where(SignInThrottle.key.in_(keys))  # type: ignore[attr-defined]
        ).scalars()
        locks = [lock for row in rows if (lock := _lock_of(row, now)) is not None]
    return max(locks, key=lambda lock: lock.until, default=None)


def failed(engine: Engine, username: str, address: str, now: datetime) -> Lock | None:
    """Count a failed sign-in; the lock it earned, if any (audited in the same commit)."""

    def work(session: Session) -> list[Lock]:
        earned = []
        for scope, (key, name, addr) in _keys(username, address).items():
            row = session.get(SignInThrottle, key)
            if row is None:
                row = SignInThrottle(
                    key=key, scope=scope, username=name, address=addr, window_started_at=now
                )
            if now - as_utc(row.window_started_at) > WINDOW:
                row.failures = 0
                row.window_started_at = now
            row.failures += 1
            if row.failures >= LIMITS[scope] and _lock_of(row, now) is None:
                length = min(FIRST_LOCK * 2**row.lockouts, LONGEST_LOCK)
                row.locked_until = now + length
                row.lockouts += 1
                row.failures = 0
                row.window_started_at = now
                earned.append(Lock(scope, name, addr, row.locked_until))
            session.add(row)
        return earned

    def changes(earned: list[Lock]) -> list[audit.Change]:
        return [
            audit.Change(
                "system",
                "sign_in.locked",
                _subject(engine, lock),
                {
                    "scope": lock.scope,
                    "username": lock.username,
                    "address": lock.address,
                    "until": lock.until.isoformat(),
                    "failures": LIMITS[lock.scope],
                    "window_minutes": WINDOW.total_seconds() / 60,
                },
            )
            for lock in earned
        ]

    earned = audit.in_transaction(engine, work, changes, lambda: now)
    return max(earned, key=lambda lock: lock.until, default=None)


def succeeded(engine: Engine, username: str, address: str) -> None:
    """A successful sign-in clears its own pair (not the address or the name: a guesser who
    also knows one password must not wipe the counts against others)."""
    key = _keys(username, address)["pair"][0]
    with Session(engine) as session:
        row = session.get(SignInThrottle, key)
        if row is not None:
            session.delete(row)
            session.commit()


def current_locks(engine: Engine, now: datetime) -> list[Lock]:
    """Every lock in force, the newest first (the account page lists them)."""
    with Session(engine) as session:
        rows = session.execute(
            select(SignInThrottle).where(SignInThrottle.locked_until.is_not(None))  # type: ignore[union-attr]
        ).scalars()
        locks = [lock for row in rows if (lock := _lock_of(row, now)) is not None]
    return sorted(locks, key=lambda lock: lock.until, reverse=True)


def unlock(
    engine: Engine, by: str, now: datetime, username: str | None = None, address: str | None = None
) -> int:
    """Lift every lock (and forget every count) naming ``username`` or ``address``: how many
    were in force. Audited, as ``by`` (a user id, or ``cli``)."""
    if username is None and address is None:
        raise ValueError("name a user or an address to unlock")

    def work(session: Session) -> tuple[int, list[Lock]]:
        clauses = []
        if username is not None:
            clauses.append(SignInThrottle.username == username)
        if address is not None:
            clauses.append(SignInThrottle.address == address)
        rows = list(session.execute(select(SignInThrottle).where(or_(*clauses))).scalars())  # type: ignore[arg-type]
        lifted = [lock for row in rows if (lock := _lock_of(row, now)) is not None]
        for row in rows:
            session.delete(row)
        return len(rows), lifted

    def changes(result: tuple[int, list[Lock]]) -> list[audit.Change]:
        _, lifted = result
        return [
            audit.Change(
                by,
                "sign_in.unlocked",
                _subject(engine, lock),
                {"scope": lock.scope, "username": lock.username, "address": lock.address},
            )
            for lock in lifted
        ]

    _, lifted = audit.in_transaction(engine, work, changes, lambda: now)
    return len(lifted)


def _subject(engine: Engine, lock: Lock) -> str:
    """``user:ID`` for a known user; otherwise what was locked (a name nobody has, or an
    address)."""
    if lock.username is not None:
        with Session(engine) as session:
            user = session.execute(
                select(AppUser).where(AppUser.username == lock.username)  # type: ignore[arg-type]
            ).scalar_one_or_none()
        if user is not None:
            return f"user:{user.id}"
        return f"sign_in:{lock.username}"[:300]
    return f"address:{lock.address}"
