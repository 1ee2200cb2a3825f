"""The browsers that take Web Push messages (table ``push_subscription``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from roomwatch.collector.models import AppUser, PushSubscription
from roomwatch.collector.read.records import StoredPushSubscription, stored

#: The longest error note kept on a subscription.
ERROR_CHARS = 500


def subscribe(
    engine: Engine, user_id: str, endpoint: str, p256dh: str, auth: str, at: datetime
) -> None:
    """Store a subscription; one already stored for ``endpoint`` is taken over (the
    browser's keys change, or another user signs in on the same device)."""
    with Session(engine) as session:
        existing = session.execute(
            select(PushSubscription).where(PushSubscription.endpoint == endpoint)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        row = existing or PushSubscription(
            user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=at
        )
        row.user_id, row.p256dh, row.auth, row.last_error = user_id, p256dh, auth, None
        session.add(row)
        session.commit()


def unsubscribe(engine: Engine, user_id: str, endpoint: str) -> bool:
    """Delete ``user_id``'s subscription at ``endpoint``; False if they have none there."""
    with Session(engine) as session:
        result = session.execute(
            delete(PushSubscription).where(
                PushSubscription.endpoint == endpoint,  # type: ignore[arg-type]
                PushSubscription.user_id == user_id,  # type: ignore[arg-type]
            )
        )
        session.commit()
        return bool(getattr(result, "rowcount", 0))


def of_roles(engine: Engine, roles: tuple[str, ...]) -> list[StoredPushSubscription]:
    """The subscriptions of users in ``roles`` who are not disabled."""
    query = (
        select(PushSubscription)
        .join(AppUser, AppUser.id == PushSubscription.user_id)  # type: ignore[arg-type]
        .where(AppUser.role.in_(roles), AppUser.disabled.is_(False))  # type: ignore[attr-defined]
    )
    with Session(engine) as session:
        return [stored(StoredPushSubscription, row) for row in session.execute(query).scalars()]


def note_error(engine: Engine, subscription_id: int, error: str) -> None:
    """Keep the last delivery error on the subscription (the first ERROR_CHARS of it)."""
    with Session(engine) as session:
        row = session.get(PushSubscription, subscription_id)
        if row is not None:
            row.last_error = error[:ERROR_CHARS]
            session.add(row)
            session.commit()
