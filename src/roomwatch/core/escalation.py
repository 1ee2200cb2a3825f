"""An alert's life after it is raised: acknowledgement and escalation. Pure.

DESIGN.md principle 6: raised, notified, acknowledged by a named person,
resolved, each step timestamped. Issue 4: a critical alert not acknowledged
within ``escalate_after_s`` (default 60 s) escalates to the next tier of
recipients, and is repeated every ``repeat_every_s`` until someone
acknowledges it. Warnings and info are not escalated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from roomwatch.core.rules import OpenAlert, Transition
from roomwatch.core.wire import AlertState, Severity


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    tiers: int = 1
    escalate_after_s: float = 60.0
    repeat_every_s: float = 60.0


def escalations(
    alerts: list[OpenAlert], now: datetime, policy: EscalationPolicy
) -> list[Transition]:
    """The escalation steps due at ``now``: the next tier, or a repeat at the last one."""
    steps = []
    for alert in alerts:
        if alert.severity is not Severity.CRITICAL or alert.state is AlertState.ACKNOWLEDGED:
            continue
        last = alert.notified_at or alert.raised_at
        wait = (
            policy.escalate_after_s if alert.state is AlertState.RAISED else policy.repeat_every_s
        )
        if now - last < timedelta(seconds=wait):
            continue
        tier = min(alert.tier + 1, max(policy.tiers, 1))
        escalated = replace(alert, state=AlertState.ESCALATED, tier=tier, notified_at=now)
        steps.append(Transition(escalated, AlertState.ESCALATED, now))
    return steps


class AcknowledgeError(ValueError):
    """The alert cannot be acknowledged (not open, or already acknowledged)."""


def acknowledge(alert: OpenAlert, by: str, now: datetime) -> Transition:
    """A named person takes the alert: escalation stops; it stays open until it clears."""
    if not by.strip():
        raise AcknowledgeError("an acknowledgement needs the name of who acknowledges")
    if alert.state is AlertState.ACKNOWLEDGED:
        raise AcknowledgeError(
            f"alert {alert.alert_id} is already acknowledged by {alert.acknowledged_by}"
        )
    taken = replace(alert, state=AlertState.ACKNOWLEDGED, acknowledged_by=by)
    return Transition(taken, AlertState.ACKNOWLEDGED, now, by)
