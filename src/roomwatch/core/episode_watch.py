"""What the room's policy asks of an open episode, minute by minute. Pure.

The agent evaluates this locally so the room itself can chirp and blink
(a teacher at the window hears that time is up even when the network is
down), and publishes each fact for the collector, which keeps the
authoritative alerts:

* ``time_limit_warning`` at the profile's warning share of the limit (80 %),
  ``time_limit_exceeded`` at the limit (POLICIES.md "LIMIT");
* each checkpoint occurrence (Connecticut's 15 then every 30 minutes, ...)
  as an ``episode`` message with ``event: checkpoint``;
* ``monitoring_lapse`` when staff have been away from the observation point
  longer than the profile allows (POLICIES.md "WATCH"; default 10 s); an
  unknown staff sensor counts as away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from roomwatch.core.policy.model import PolicyProfile, StudentBand


@dataclass(frozen=True, slots=True)
class CheckpointRule:
    id: str
    first_s: float
    every_s: float | None
    until_s: float | None
    action: str

    def occurrences_until(self, elapsed_s: float) -> int:
        """How many occurrences have fallen due after ``elapsed_s`` seconds."""
        if elapsed_s < self.first_s:
            return 0
        if self.every_s is None:
            return 1
        horizon = elapsed_s if self.until_s is None else min(elapsed_s, self.until_s)
        return 1 + max(0, math.floor((horizon - self.first_s) / self.every_s))


@dataclass(frozen=True, slots=True)
class WatchRules:
    """A profile, resolved for one room and student band, in seconds."""

    limit_s: float | None
    warning_s: float | None
    checkpoints: tuple[CheckpointRule, ...] = ()
    monitoring: bool = True
    lapse_after_s: float = 10.0

    @classmethod
    def from_profile(
        cls,
        profile: PolicyProfile,
        band: StudentBand | None = None,
        limit_min: float | None = None,
        lapse_after_s: float | None = None,
    ) -> WatchRules:
        """``limit_min`` (a room's override) replaces the profile's limit when given."""
        minutes = limit_min if limit_min is not None else profile.time_limit.minutes_for(band)
        limit_s = minutes * 60 if minutes is not None else None
        warning_s = limit_s * profile.time_limit.warning_fraction if limit_s else None
        checkpoints = tuple(
            CheckpointRule(
                c.id,
                c.first_due_min(band) * 60,
                c.every_min * 60 if c.every_min else None,
                c.until_min * 60 if c.until_min else None,
                c.action,
            )
            for c in profile.checkpoints
        )
        every = profile.monitoring.checkin_every_min
        if every is not None:  # e.g. Louisiana: an observation recorded at least every 15 min
            checkpoints += (
                CheckpointRule(
                    "observation_checkin",
                    every * 60,
                    every * 60,
                    None,
                    "Record an observation check-in.",
                ),
            )
        return cls(
            limit_s,
            warning_s,
            checkpoints,
            profile.monitoring.continuous,
            lapse_after_s if lapse_after_s is not None else profile.monitoring.lapse_after_s,
        )


@dataclass(frozen=True, slots=True)
class WatchState:
    """What has been announced for the open episode."""

    warned: bool = False
    exceeded: bool = False
    checkpoints: dict[str, int] = field(default_factory=dict)  # id -> occurrences announced
    staff_away_since: datetime | None = None
    lapse_since: datetime | None = None

    @property
    def needs_attention(self) -> bool:
        """Chirp and blink: time is up, or nobody is watching."""
        return self.exceeded or self.lapse_since is not None


@dataclass(frozen=True, slots=True)
class Fact:
    """Something to publish: an event, or (``checkpoint``) an episode checkpoint message."""

    type: str
    fields: dict[str, object]
    checkpoint: bool = False


def watch(
    state: WatchState,
    rules: WatchRules,
    started_at: datetime,
    staff_present: bool | None,
    staff_fitted: bool,
    now: datetime,
) -> tuple[WatchState, list[Fact]]:
    """Advance the watch of one open episode to ``now``."""
    facts: list[Fact] = []
    elapsed = (now - started_at).total_seconds()
    if rules.warning_s is not None and not state.warned and elapsed >= rules.warning_s:
        state = replace(state, warned=True)
        facts.append(Fact("time_limit_warning", {"limit_min": _min(rules.limit_s)}))
    if rules.limit_s is not None and not state.exceeded and elapsed >= rules.limit_s:
        state = replace(state, exceeded=True)
        facts.append(Fact("time_limit_exceeded", {"limit_min": _min(rules.limit_s)}))
    announced = dict(state.checkpoints)
    for rule in rules.checkpoints:
        due = rule.occurrences_until(elapsed)
        for n in range(announced.get(rule.id, 0), due):
            at_s = rule.first_s + n * (rule.every_s or 0)
            facts.append(
                Fact(
                    "checkpoint",
                    {
                        "checkpoint": rule.id,
                        "occurrence": n + 1,
                        "at_min": _min(at_s),
                        "action": rule.action,
                    },
                    checkpoint=True,
                )
            )
        announced[rule.id] = max(due, announced.get(rule.id, 0))
    state = replace(state, checkpoints=announced)
    if rules.monitoring and staff_fitted:
        state, lapse = _monitoring(state, rules, staff_present, now)
        facts.extend(lapse)
    return state, facts


def _monitoring(
    state: WatchState, rules: WatchRules, staff_present: bool | None, now: datetime
) -> tuple[WatchState, list[Fact]]:
    facts: list[Fact] = []
    if staff_present is True:
        if state.lapse_since is not None:
            lapse_s = (now - state.lapse_since).total_seconds()
            facts.append(Fact("monitoring_restored", {"lapse_s": round(lapse_s, 1)}))
        return replace(state, staff_away_since=None, lapse_since=None), facts
    away_since = state.staff_away_since or now
    state = replace(state, staff_away_since=away_since)
    if state.lapse_since is None and now - away_since > timedelta(seconds=rules.lapse_after_s):
        state = replace(state, lapse_since=away_since)
        why = (
            "staff away from the observation point"
            if staff_present is False
            else "staff sensor unknown"
        )
        facts.append(
            Fact("monitoring_lapse", {"reason": why, "lapse_after_s": rules.lapse_after_s})
        )
    return state, facts


def _min(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)
