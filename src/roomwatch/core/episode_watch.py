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

While an end is pending (``vacated_at``: no one seen since then, the room not
sealed), a fact that falls due at or after ``vacated_at`` is held, not
announced: if the end is confirmed the episode closes at ``vacated_at`` and the
fact never was (the student was not there); if someone is seen again it is
announced on the next step. A fact due before ``vacated_at`` was due while the
student was there and goes out as usual.
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

    def at_s(self, n: int) -> float:
        """When occurrence ``n`` (from 0) falls due, in seconds into the episode."""
        return self.first_s + n * (self.every_s or 0)

    def occurrences_until(self, elapsed_s: float, strict: bool = False) -> int:
        """How many occurrences have fallen due after ``elapsed_s`` seconds (``strict``:
        before it, not at it: ``elapsed_s`` is then an exit, and one due as the student
        leaves was not due while they were there)."""
        if elapsed_s < self.first_s or (strict and elapsed_s == self.first_s):
            return 0
        if self.every_s is None:
            return 1
        horizon = elapsed_s if self.until_s is None else min(elapsed_s, self.until_s)
        count = 1 + max(0, math.floor((horizon - self.first_s) / self.every_s))
        if strict and count > 1 and self.at_s(count - 1) >= elapsed_s:
            count -= 1
        return count


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
    vacated_at: datetime | None = None,
) -> tuple[WatchState, list[Fact]]:
    """Advance the watch of one open episode to ``now`` (holding what ``vacated_at`` holds)."""
    facts: list[Fact] = []
    elapsed = (now - started_at).total_seconds()
    # While an end is pending, only what fell due before the candidate exit may go out.
    strict = vacated_at is not None
    if vacated_at is not None:
        elapsed = min(elapsed, (vacated_at - started_at).total_seconds())
    if rules.warning_s is not None and not state.warned and _due(rules.warning_s, elapsed, strict):
        state = replace(state, warned=True)
        facts.append(Fact("time_limit_warning", {"limit_min": _min(rules.limit_s)}))
    if rules.limit_s is not None and not state.exceeded and _due(rules.limit_s, elapsed, strict):
        state = replace(state, exceeded=True)
        facts.append(Fact("time_limit_exceeded", {"limit_min": _min(rules.limit_s)}))
    announced = dict(state.checkpoints)
    for rule in rules.checkpoints:
        due = rule.occurrences_until(elapsed, strict)
        for n in range(announced.get(rule.id, 0), due):
            at_s = rule.at_s(n)
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
        state, lapse = _monitoring(state, rules, staff_present, now, vacated_at)
        facts.extend(lapse)
    return state, facts


def _due(due_s: float, elapsed_s: float, strict: bool) -> bool:
    """Whether a rule due ``due_s`` into the episode has fallen due after ``elapsed_s``
    (``strict``: ``elapsed_s`` is an exit, and what falls due as the student leaves was not
    due while they were there: Michigan's extra steps are for a seclusion that "lasts longer
    than 15 minutes", 003 App. B, MI (f))."""
    return elapsed_s > due_s if strict else elapsed_s >= due_s


def _monitoring(
    state: WatchState,
    rules: WatchRules,
    staff_present: bool | None,
    now: datetime,
    vacated_at: datetime | None,
) -> tuple[WatchState, list[Fact]]:
    facts: list[Fact] = []
    if staff_present is True:
        if state.lapse_since is not None:
            lapse_s = (now - state.lapse_since).total_seconds()
            facts.append(Fact("monitoring_restored", {"lapse_s": round(lapse_s, 1)}))
        return replace(state, staff_away_since=None, lapse_since=None), facts
    away_since = state.staff_away_since or now
    state = replace(state, staff_away_since=away_since)
    lapse_at = away_since + timedelta(seconds=rules.lapse_after_s)
    held = vacated_at is not None and lapse_at >= vacated_at
    if state.lapse_since is None and now > lapse_at and not held:
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
