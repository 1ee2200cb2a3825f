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
collector's clock, so tests run it on the virtual clock. The counts live in the database
(collector/sign_in_log.py): every web process sees them and a restart forgets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine

from roomwatch.collector import accounts, audit, sign_in_log
from roomwatch.collector.read.records import StoredSignInCount

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


def _pair_key(username: str, address: str) -> str:
    return f"pair{_SEP}{username}{_SEP}{address}"


def _fresh(username: str, address: str, now: datetime) -> dict[str, StoredSignInCount]:
    """The three counts one sign-in attempt falls under, as each starts (nothing counted)."""

    def count(key: str, scope: str, name: str | None, addr: str | None) -> StoredSignInCount:
        return StoredSignInCount(key, scope, name, addr, 0, now, None, 0)

    return {
        "pair": count(_pair_key(username, address), "pair", username, address),
        "address": count(f"address{_SEP}{address}", "address", None, address),
        "user": count(f"user{_SEP}{username}", "user", username, None),
    }


def _lock_of(count: StoredSignInCount, now: datetime) -> Lock | None:
    if count.locked_until is None or count.locked_until <= now:
        return None
    return Lock(count.scope, count.username, count.address, count.locked_until)


def _after_failure(count: StoredSignInCount, now: datetime) -> StoredSignInCount:
    """The count with one more failure: a fresh window once the last is over, and a lock
    (twice as long as the one before) at the scope's limit."""
    if now - count.window_started_at > WINDOW:
        count = replace(count, failures=0, window_started_at=now)
    count = replace(count, failures=count.failures + 1)
    if count.failures >= LIMITS[count.scope] and _lock_of(count, now) is None:
        length = min(FIRST_LOCK * 2**count.lockouts, LONGEST_LOCK)
        count = replace(
            count,
            locked_until=now + length,
            lockouts=count.lockouts + 1,
            failures=0,
            window_started_at=now,
        )
    return count


def locked(engine: Engine, username: str, address: str, now: datetime) -> Lock | None:
    """The lock (the longest, if several) that stops ``username`` signing in from
    ``address`` now, or None."""
    keys = [count.key for count in _fresh(username, address, now).values()]
    found = sign_in_log.counts(engine, keys)
    locks = [lock for count in found if (lock := _lock_of(count, now)) is not None]
    return max(locks, key=lambda lock: lock.until, default=None)


def failed(engine: Engine, username: str, address: str, now: datetime) -> Lock | None:
    """Count a failed sign-in; the lock it earned, if any (audited in the same commit)."""

    def earned(steps: list[sign_in_log.Step]) -> list[Lock]:
        return [
            Lock(after.scope, after.username, after.address, after.locked_until)
            for before, after in steps
            if after.lockouts > before.lockouts and after.locked_until is not None
        ]

    def changes(steps: list[sign_in_log.Step]) -> list[audit.Change]:
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
            for lock in earned(steps)
        ]

    fresh = list(_fresh(username, address, now).values())
    steps = sign_in_log.count_failure(
        engine, fresh, lambda count: _after_failure(count, now), changes, now
    )
    return max(earned(steps), key=lambda lock: lock.until, default=None)


def succeeded(engine: Engine, username: str, address: str) -> None:
    """A successful sign-in clears its own pair (not the address or the name: a guesser who
    also knows one password must not wipe the counts against others)."""
    sign_in_log.forget(engine, _pair_key(username, address))


def current_locks(engine: Engine, now: datetime) -> list[Lock]:
    """Every lock in force, the newest first (the account page lists them)."""
    found = sign_in_log.with_locks(engine)
    locks = [lock for count in found if (lock := _lock_of(count, now)) is not None]
    return sorted(locks, key=lambda lock: lock.until, reverse=True)


def unlock(
    engine: Engine, by: str, now: datetime, username: str | None = None, address: str | None = None
) -> int:
    """Lift every lock (and forget every count) naming ``username`` or ``address``: how many
    were in force. Audited, as ``by`` (a user id, or ``cli``)."""
    if username is None and address is None:
        raise ValueError("name a user or an address to unlock")

    def lifted(found: list[StoredSignInCount]) -> list[Lock]:
        return [lock for count in found if (lock := _lock_of(count, now)) is not None]

    def changes(found: list[StoredSignInCount]) -> list[audit.Change]:
        return [
            audit.Change(
                by,
                "sign_in.unlocked",
                _subject(engine, lock),
                {"scope": lock.scope, "username": lock.username, "address": lock.address},
            )
            for lock in lifted(found)
        ]

    return len(lifted(sign_in_log.forget_naming(engine, username, address, changes, now)))


def _subject(engine: Engine, lock: Lock) -> str:
    """``user:ID`` for a known user; otherwise what was locked (a name nobody has, or an
    address)."""
    if lock.username is not None:
        user = accounts.user_named(engine, lock.username)
        if user is not None:
            return f"user:{user.id}"
        return f"sign_in:{lock.username}"[:300]
    return f"address:{lock.address}"
