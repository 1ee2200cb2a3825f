"""What an alert step says to the people on a notification tier (collector/delivery/)."""

from __future__ import annotations

from roomwatch.collector.delivery import Notification
from roomwatch.core import rules, wire


def notice_of(transition: rules.Transition) -> Notification | None:
    """The notification for one alert step, or None when nobody is to hear of it.

    Raised and escalated steps go to the tier the alert has reached; acknowledged and
    resolved steps to the first tier, so the people woken hear that it is handled. Warnings
    and info get one notice when raised, no follow-ups."""
    a = transition.alert
    state = transition.state
    tier = a.tier if state in (wire.AlertState.RAISED, wire.AlertState.ESCALATED) else 1
    if a.severity is not wire.Severity.CRITICAL and state is not wire.AlertState.RAISED:
        return None
    who = f" by {a.acknowledged_by}" if state is wire.AlertState.ACKNOWLEDGED else ""
    return Notification(
        alert_id=a.alert_id,
        state=state.value,
        severity=a.severity.value,
        title=f"[{a.severity.value.upper()}] {a.type.value.replace('_', ' ')} in "
        f"{a.site}/{a.room}: {state.value}{who}",
        body=a.message,
        tier=tier,
    )
