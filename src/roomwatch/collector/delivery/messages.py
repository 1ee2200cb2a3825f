"""What the dispatcher is given (a notification) and what it reports (an attempt)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

Notify = Callable[[str, str, str], bool]
"""``notify(url, title, body) -> ok``: sends one message on one channel."""

SEVERITY_PRIORITY: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
"""Queue priority by severity; lower goes first."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One step of an alert's life, to be sent to every channel of a tier."""

    alert_id: str
    state: str  # raised | escalated | repeated | acknowledged | resolved
    severity: str  # info | warning | critical
    title: str
    body: str
    tier: int  # 1 = first recipients, 2 = escalation, ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at sending one notification on one channel: a line of the audit trail."""

    alert_id: str
    state: str
    tier: int  # the tier actually used (an unknown tier is sent to the highest one)
    channel: str  # the channel's URL with passwords and tokens redacted
    at: datetime  # from the injected clock, when the attempt's outcome was known
    ok: bool
    error: str | None
    attempt: int  # 1, 2, ...
