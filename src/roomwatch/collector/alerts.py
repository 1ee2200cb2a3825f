"""The alert desk: which alerts are open, and every step of their life made known.

Each step (raised, escalated, acknowledged, resolved) is published on the
room's ``alerts`` topic at once and handed to delivery (Apprise channels by
tier); the caller stores it. Nothing here waits for the database.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from roomwatch.core import rules, wire
from roomwatch.core.clock import Clock
from roomwatch.core.escalation import AcknowledgeError, EscalationPolicy, acknowledge, escalations

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], object]
Notify = Callable[[rules.Transition], None]


class AlertDesk:
    def __init__(
        self,
        publish: Publish,
        clock: Clock,
        policy: EscalationPolicy | None = None,
        notify: Notify | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._policy = policy or EscalationPolicy()
        self._notify = notify
        self._new_id = new_id
        self._lock = threading.Lock()
        self.open: dict[rules.AlertKey, rules.OpenAlert] = {}

    def load(self, alerts: Iterable[rules.OpenAlert]) -> None:
        with self._lock:
            for alert in alerts:
                self.open[alert.key] = alert

    def raised_in(
        self, site: str, room: str, episode_id: str | None
    ) -> frozenset[tuple[wire.AlertType, str | None]]:
        """The (type, subject) of the open alerts of one room's episode."""
        if episode_id is None:
            return frozenset()
        with self._lock:
            return frozenset(
                (k[2], k[4]) for k in self.open if k[:2] == (site, room) and k[3] == episode_id
            )

    def reconcile(
        self,
        site: str,
        room: str,
        conditions: list[rules.Condition],
        owned: frozenset[wire.AlertType],
        at: datetime,
        late: bool,
    ) -> list[rules.Transition]:
        """Apply the conditions of one room; make known and return the transitions."""
        now = self._clock.now()
        with self._lock:
            transitions = rules.reconcile(self.open, site, room, conditions, owned, at, late)
            transitions = [
                replace(t, alert=replace(t.alert, notified_at=now))
                if t.state is wire.AlertState.RAISED
                else t
                for t in transitions
            ]
            self._apply(transitions)
        self._announce_all(transitions)
        return transitions

    def escalate(self) -> list[rules.Transition]:
        """Escalate or repeat the unacknowledged critical alerts that are due."""
        now = self._clock.now()
        with self._lock:
            transitions = escalations(list(self.open.values()), now, self._policy)
            self._apply(transitions)
        self._announce_all(transitions)
        return transitions

    def acknowledge(self, alert_id: str, by: str) -> rules.Transition:
        """A named person takes an open alert. :class:`AcknowledgeError` if it cannot be."""
        with self._lock:
            alert = next((a for a in self.open.values() if a.alert_id == alert_id), None)
            if alert is None:
                raise AcknowledgeError(f"no open alert {alert_id}")
            transition = acknowledge(alert, by, self._clock.now())
            self._apply([transition])
        self._announce_all([transition])
        return transition

    def _apply(self, transitions: list[rules.Transition]) -> None:
        for t in transitions:
            if t.state is wire.AlertState.RESOLVED:
                self.open.pop(t.alert.key, None)
            else:
                self.open[t.alert.key] = t.alert

    def _announce_all(self, transitions: list[rules.Transition]) -> None:
        for t in transitions:
            self.announce(t)

    def announce(self, t: rules.Transition) -> None:
        """Publish one lifecycle step and hand it to delivery (never raises)."""
        a = t.alert
        try:
            message = wire.Alert(
                id=self._new_id(),
                ts=self._clock.now(),
                site=a.site,
                room=a.room,
                alert_id=a.alert_id,
                type=a.type,
                severity=a.severity,
                state=t.state,
                episode_id=a.episode_id,
                raised_at=a.raised_at,
                message=a.message,
                late=a.late,
                subject=a.subject,
                tier=min(a.tier, 9),
                acknowledged_by=a.acknowledged_by,
            )
            self._publish(wire.topic_of(message), wire.encode(message))
            log.log(
                logging.WARNING if a.severity is wire.Severity.CRITICAL else logging.INFO,
                "alert %s %s %s/%s%s: %s",
                t.state.value,
                a.type.value,
                a.site,
                a.room,
                f" (tier {a.tier})" if t.state is wire.AlertState.ESCALATED else "",
                a.message,
            )
        except Exception:
            log.exception("could not publish alert %s", a.alert_id)
        if self._notify is not None:
            try:
                self._notify(t)
            except Exception:
                log.exception("could not hand alert %s to delivery", a.alert_id)
