"""The alert desk: which alerts are open, and publishing each step of their life."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from roomwatch.core import rules, wire
from roomwatch.core.clock import Clock

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], object]


class AlertDesk:
    def __init__(
        self, publish: Publish, clock: Clock, new_id: Callable[[], str] = lambda: uuid.uuid4().hex
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.Lock()
        self.open: dict[rules.AlertKey, rules.OpenAlert] = {}

    def load(self, alerts: Iterable[rules.OpenAlert]) -> None:
        with self._lock:
            for alert in alerts:
                self.open[alert.key] = alert

    def reconcile(
        self,
        site: str,
        room: str,
        conditions: list[rules.Condition],
        owned: frozenset[wire.AlertType],
        at: datetime,
        late: bool,
    ) -> list[rules.Transition]:
        """Apply the conditions of one room; publish and return the transitions."""
        with self._lock:
            transitions = rules.reconcile(self.open, site, room, conditions, owned, at, late)
            for t in transitions:
                if t.state is wire.AlertState.RESOLVED:
                    self.open.pop(t.alert.key, None)
                else:
                    self.open[t.alert.key] = t.alert
        for t in transitions:
            self.announce(t)
        return transitions

    def announce(self, t: rules.Transition) -> None:
        """Publish one lifecycle step on the room's alerts topic (never raises)."""
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
            )
            self._publish(wire.topic_of(message), wire.encode(message))
            log.log(
                logging.WARNING if a.severity is wire.Severity.CRITICAL else logging.INFO,
                "alert %s %s %s/%s: %s",
                t.state.value,
                a.type.value,
                a.site,
                a.room,
                a.message,
            )
        except Exception:
            log.exception("could not publish alert %s", a.alert_id)
