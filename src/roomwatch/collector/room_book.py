"""The room book: every room as the collector sees it, and the alerts open in it.

It folds each message into its room's view (core/room_view.py), picks the room's profile
and rules, and reconciles the room's alerts on the alert desk, which publishes each step at
once. :class:`RoomBook` is what the composition root asks of it: a book that holds only
the sites its collector leases, rebuilt from the shared database when it takes a site over
(issue 16), can replace :class:`MemoryRoomBook` without a change to the root.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from roomwatch.collector.alerts import AlertDesk
from roomwatch.collector.config import CollectorConfig, RoomRegistration
from roomwatch.collector.liveness import forgive, stall_of
from roomwatch.collector.observability import Counters
from roomwatch.core import rules, wire
from roomwatch.core.claimed_time import judge, skew_conditions
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import PolicyProfile, ProfileError, StudentBand, load_profile
from roomwatch.core.room_view import ROOM_TYPES, RoomView, conditions, observe

log = logging.getLogger(__name__)

Key = tuple[str, str]
#: What a periodic check found: the conditions per (site, room) among the types it owns.
Found = dict[Key, list[rules.Condition]]
#: The rooms an administrator registered (collector/recovery.py reads them at start).
Registered = dict[Key, RoomRegistration]


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """One room as the collector sees it now, with the rules that apply to it."""

    view: RoomView
    profile: PolicyProfile
    registration: RoomRegistration
    limits: rules.EnvironmentLimits
    watch: WatchRules
    alerts: list[rules.OpenAlert]


class RoomBook(Protocol):
    """What the composition root asks of room state."""

    def load(
        self,
        facts: Iterable[tuple[wire.Message, datetime]],
        registered: dict[Key, RoomRegistration],
    ) -> None: ...
    def judge(self, message: wire.Message, now: datetime) -> list[rules.Transition]: ...
    def tick(self, now: datetime) -> list[rules.Transition]: ...
    def reconcile_check(
        self, found: Found, owned: frozenset[wire.AlertType], now: datetime
    ) -> list[rules.Transition]: ...
    def acknowledge(self, alert_id: str, by: str) -> rules.Transition: ...
    def register(self, key: Key, registration: RoomRegistration) -> None: ...
    def registration(self, key: Key) -> RoomRegistration: ...
    def snapshot(self, key: Key) -> RoomSnapshot | None: ...
    def rooms(self) -> list[Key]: ...
    def open_alerts(self) -> list[rules.OpenAlert]: ...


class MemoryRoomBook:
    """The room book of a collector that serves every site, held in memory."""

    def __init__(self, config: CollectorConfig, desk: AlertDesk, counters: Counters) -> None:
        self.config = config
        self.desk = desk
        self._counters = counters
        self._window = config.time_window
        #: Guards the views: paho's thread judges, the scheduler ticks, the web app reads.
        self.lock = threading.RLock()
        self._views: dict[Key, RoomView] = {}
        self._reported_profiles: dict[Key, str] = {}
        self._unknown_profiles: dict[Key, str] = {}
        #: Rooms registered by an administrator in the web app (they override the config).
        self._registered: dict[Key, RoomRegistration] = {}
        # Keyed by the (cached, immutable) profile object's id; the profile is kept to check it.
        self._rules_cache: dict[
            tuple[int, StudentBand | None],
            tuple[PolicyProfile, rules.EnvironmentLimits, WatchRules],
        ] = {}
        self._last_tick_at: datetime | None = None

    # -------------------------------------------------------------- building

    def load(
        self,
        facts: Iterable[tuple[wire.Message, datetime]],
        registered: dict[Key, RoomRegistration],
    ) -> None:
        """At start: the registrations, and the views rebuilt from recent stored facts."""
        with self.lock:
            self._registered = dict(registered)
            for message, received_at in facts:
                self._fold(message, received_at)

    def _fold(self, message: wire.Message, received_at: datetime) -> RoomView:
        key = (message.site, message.room)
        if isinstance(message, wire.Status):
            self._reported_profiles[key] = message.profile
        view = self._views.get(key) or RoomView(*key)
        view = self._views[key] = observe(view, message, received_at, self._window)
        return view

    # ------------------------------------------------------------ judging

    def judge(self, message: wire.Message, now: datetime) -> list[rules.Transition]:
        """Fold the message into its room's view and reconcile the room's alerts."""
        with self.lock:
            view = self._fold(message, now)
            # A status is news when it arrives: a last will carries the time it was made
            # (when the agent connected), not the time it fired. A time outside the window
            # is not believed: the message counts from its arrival (core/claimed_time.py).
            judged = judge(message, now, self._window).message
            sent = now if isinstance(message, wire.Status) else judged.ts
            late = (now - sent).total_seconds() > self.config.late_after_s
            # Raised at the message's own time: after an outage, when it happened.
            return self._evaluate(view, now, at=min(sent, now), late=late)

    def tick(self, now: datetime) -> list[rules.Transition]:
        """Time passes: time limits, checkpoints, lapses, silences and escalations fall due."""
        transitions: list[rules.Transition] = []
        stalled = stall_of(self._last_tick_at, now, self.config.tick_s)
        self._last_tick_at = now
        with self.lock:
            if stalled is not None:
                self._forgive(stalled, now)
            for view in list(self._views.values()):
                transitions += self._evaluate(view, now, at=now, late=False)
        return transitions + self.desk.escalate()

    def _forgive(self, stalled: timedelta, now: datetime) -> None:
        # Nothing could be heard while the collector itself was stopped: no agent is to
        # blame for that silence.
        forgive(self._views, stalled, now)
        log.warning(
            "the collector itself was stalled for %.0f s (no tick for %.0f s): silence is "
            "measured from now, not blamed on the agents",
            stalled.total_seconds(),
            stalled.total_seconds() + self.config.tick_s,
        )

    def reconcile_check(
        self, found: Found, owned: frozenset[wire.AlertType], now: datetime
    ) -> list[rules.Transition]:
        """A periodic check's findings, room by room; a room it leaves out has none of the
        ``owned`` types (their open alerts resolve)."""
        rooms = set(found) | {
            (a.site, a.room) for a in list(self.desk.open.values()) if a.type in owned
        }
        transitions: list[rules.Transition] = []
        for site, room in sorted(rooms):
            transitions += self.desk.reconcile(
                site, room, found.get((site, room), []), owned, now, False
            )
        return transitions

    def acknowledge(self, alert_id: str, by: str) -> rules.Transition:
        """A named user takes an open alert (AcknowledgeError if it is not open)."""
        return self.desk.acknowledge(alert_id, by)

    def _evaluate(
        self, view: RoomView, now: datetime, at: datetime, late: bool
    ) -> list[rules.Transition]:
        key = (view.site, view.room)
        profile = self._profile(key)
        limits, watch = self.rules_of(profile, self.registration(key).student_band)
        raised = self.desk.raised_in(view.site, view.room, view.episode_id)
        found = conditions(view, limits, watch, now, self.config.telemetry_interval_s, raised)
        found += skew_conditions(view.clock_skew_s)
        transitions = self.desk.reconcile(view.site, view.room, found, ROOM_TYPES, at, late)
        self._count(transitions)
        return transitions

    def _count(self, transitions: list[rules.Transition]) -> None:
        counters = self._counters
        for t in transitions:
            if t.state is wire.AlertState.RAISED:
                counters.alerts += 1
                key = (t.alert.type.value, t.alert.severity.value)
                counters.alerts_by_type[key] = counters.alerts_by_type.get(key, 0) + 1

    # ------------------------------------------------------ rooms and rules

    def register(self, key: Key, registration: RoomRegistration) -> None:
        """An administrator set a room's profile and student band (already stored)."""
        if registration.profile is None and registration.student_band is None:
            # Nothing set: as after a restart (registered_rooms skips such rows), the config
            # file and the agent's report decide again.
            self._registered.pop(key, None)
        else:
            self._registered[key] = registration
        with self.lock:
            self._views.setdefault(key, RoomView(*key))

    def registration(self, key: Key) -> RoomRegistration:
        """A registered room's settings, else the config file's, else none."""
        return (
            self._registered.get(key)
            or self.config.rooms.get(f"{key[0]}/{key[1]}")
            or RoomRegistration()
        )

    def is_registered(self, key: Key) -> bool:
        """Whether an administrator's registration (not the config file) applies."""
        return key in self._registered

    def rules_of(
        self, profile: PolicyProfile, band: StudentBand | None
    ) -> tuple[rules.EnvironmentLimits, WatchRules]:
        """A profile's limits and watch rules, built once (not for every message)."""
        key = (id(profile), band)
        found = self._rules_cache.get(key)
        if found is None or found[0] is not profile:
            limits = rules.EnvironmentLimits.from_profile(profile)
            found = self._rules_cache[key] = (
                profile,
                limits,
                WatchRules.from_profile(profile, band),
            )
        return found[1], found[2]

    def _profile(self, key: Key) -> PolicyProfile:
        default = self.config.default_profile
        profile_id = self.registration(key).profile
        profile_id = profile_id or self._reported_profiles.get(key, default)
        try:
            return load_profile(profile_id)
        except ProfileError:
            # Once per room and profile: the live board asks for the room several times a
            # second, and a warning each time would bury everything else in the log.
            if self._unknown_profiles.get(key) != profile_id:
                self._unknown_profiles[key] = profile_id
                log.warning(
                    "room %s/%s reports unknown profile %r; using %s", *key, profile_id, default
                )
            return load_profile(default)

    # ------------------------------------------------------------- reading

    def snapshot(self, key: Key) -> RoomSnapshot | None:
        with self.lock:
            view = self._views.get(key)
        if view is None:
            return None
        profile = self._profile(key)
        registration = self.registration(key)
        alerts = [a for a in list(self.desk.open.values()) if (a.site, a.room) == key]
        limits, watch = self.rules_of(profile, registration.student_band)
        return RoomSnapshot(view, profile, registration, limits, watch, alerts)

    def rooms(self) -> list[Key]:
        """Every room heard from (or registered), by site and room."""
        with self.lock:
            return sorted(self._views)

    def open_alerts(self) -> list[rules.OpenAlert]:
        """Newest first."""
        return sorted(self.desk.open.values(), key=lambda a: a.raised_at, reverse=True)
