"""Who signs in: users, their display names, and the API tokens issued to them."""

from __future__ import annotations

from sqlalchemy import Engine, select

from roomwatch.collector.models import ApiToken, AppUser
from roomwatch.collector.read.fetch import all_of
from roomwatch.collector.read.records import StoredToken, StoredUser


def users(engine: Engine) -> list[StoredUser]:
    return all_of(engine, select(AppUser).order_by(AppUser.username), StoredUser)


def display_names(engine: Engine) -> dict[str, str]:
    """User ids to display names, for "acknowledged by" and the audit trail."""
    return {u.id: u.display_name for u in users(engine)}


def tokens(engine: Engine) -> list[StoredToken]:
    """Every API token, the newest first (revoked ones too: the account page shows them)."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
    return all_of(engine, query, StoredToken)
