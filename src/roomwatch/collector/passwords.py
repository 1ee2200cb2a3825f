"""Password hashing: argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).

Here, beside the accounts table, rather than in the web app: every way a user is made (the
web page, ``roomwatch user add``, the demo) goes through accounts.create_user, and none of
them should need the web app to hash a password."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 10

_hasher = PasswordHasher()
#: Verified against when there is no hash to check (unknown name, disabled user), so a
#: guesser cannot tell those cases from a wrong password by the time taken.
_DUMMY_HASH = _hasher.hash("roomwatch-no-such-user")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored_hash`` was made from; always False for
    None, after the same work as a real check."""
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
