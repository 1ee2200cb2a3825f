"""The verdict on one episode: the audit questions of POLICIES.md, each answered with its
evidence. Pure: the facts of the episode in, a JSON-ready :class:`Verdict` out.

The questions (POLICIES.md, "What the collected data must answer"):

* ``door_unlocked``: was the door unlocked the whole time (LOCK)?
* ``watched``: was the student watched the whole time (WATCH)?
* ``within_limit``: did it end within the limit, with every checkpoint met (LIMIT)?
* ``environment``: was the room within its temperature, light and CO2 limits (ROOM)?
* ``parents_notified``: were the parents told in time (NOTIFY)?
* ``record_complete``: is the incident record complete (RECORD)?

Each answer is ``pass``, ``fail``, ``pending`` (not due yet: the episode is open or a
deadline is still ahead) or ``unknown`` (the sensors cannot vouch for it: no reading, or
readings missing for part of the episode). The episode's outcome is the worst of them, in
that order: fail, pending, unknown, pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from roomwatch.core.deadlines import (
    describe_notification_rule,
    notification_deadline,
    record_deadline,
)
from roomwatch.core.episode_facts import AlertFact, EpisodeFacts
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.incident import FIELD_LABELS
from roomwatch.core.rules import EnvironmentLimits
from roomwatch.core.wire import AlertType

#: The alerts that say a student was not watched.
_UNWATCHED = frozenset({AlertType.MONITORING_LAPSE, AlertType.SECLUSION_PROHIBITED})

#: Evidence lists are cut to this many entries (the count is always given in full).
EVIDENCE_KEPT = 20


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    PENDING = "pending"
    UNKNOWN = "unknown"


_SEVERITY = {Outcome.PASS: 0, Outcome.UNKNOWN: 1, Outcome.PENDING: 2, Outcome.FAIL: 3}


def worst(outcomes: Sequence[Outcome]) -> Outcome:
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.PASS)


# ----------------------------------------------------------------------- verdict out


class Item(BaseModel):
    """One audit question: its answer, a sentence, and the evidence (times in UTC)."""

    model_config = ConfigDict(frozen=True)

    id: str
    question: str
    outcome: Outcome
    summary: str
    evidence: dict[str, Any]


class Verdict(BaseModel):
    """The verdict on one episode (``model_dump(mode="json")`` for the web app and exports).

    ``items`` are in the order of the module docstring, each with ``id``, ``question``,
    ``outcome``, ``summary`` and ``evidence`` (a dict whose keys depend on the item).
    """

    model_config = ConfigDict(frozen=True)

    episode_id: str
    site: str
    room: str
    profile: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    student_ref: str | None
    outcome: Outcome
    computed_at: datetime
    items: list[Item]

    def item(self, item_id: str) -> Item:
        return next(i for i in self.items if i.id == item_id)


#: Each item's question, in the order of the module docstring.
QUESTIONS = {
    "door_unlocked": "Was the door unlocked the whole time?",
    "watched": "Was the student watched the whole time?",
    "within_limit": "Did it end within the limit, with every checkpoint met?",
    "environment": "Was the room within its temperature, light and CO2 limits?",
    "parents_notified": "Were the parents notified in time?",
    "record_complete": "Is the incident record complete?",
}


#: One item's answer: its outcome, a sentence, and the evidence.
Answer = tuple[Outcome, str, dict[str, Any]]


def _answer(item_id: str, outcome: Outcome, summary: str, evidence: dict[str, Any]) -> Item:
    return Item(
        id=item_id, question=QUESTIONS[item_id], outcome=outcome, summary=summary, evidence=evidence
    )


def judge(facts: EpisodeFacts, now: datetime) -> Verdict:
    """Answer every audit question for the episode, as of ``now``."""
    items = [_answer(item_id, *ask(facts, now)) for item_id, ask in _ITEMS]
    end = facts.ended_at
    return Verdict(
        episode_id=facts.episode_id,
        site=facts.site,
        room=facts.room,
        profile=facts.profile.id,
        started_at=facts.started_at,
        ended_at=end,
        duration_s=(end - facts.started_at).total_seconds() if end else None,
        student_ref=facts.record.student_ref,
        outcome=worst([i.outcome for i in items]),
        computed_at=now,
        items=items,
    )


def _t(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _gaps(facts: EpisodeFacts, now: datetime, has: Any) -> list[dict[str, Any]]:
    """Stretches of the episode longer than ``max_gap_s`` with no reading that ``has`` a
    value (from the start to the first, between readings, from the last to the end)."""
    end = facts.ended_at or now
    times = [facts.started_at, *sorted(r.ts for r in facts.readings if has(r)), end]
    gaps = []
    for a, b in itertools.pairwise(times):
        seconds = (b - a).total_seconds()
        if seconds > facts.max_gap_s:
            gaps.append({"from": _t(a), "to": _t(b), "seconds": round(seconds, 1)})
    return gaps


def _door_unlocked(facts: EpisodeFacts, now: datetime) -> Answer:
    known = [r for r in facts.readings if r.door_locked is not None]
    locked = [r for r in known if r.door_locked]
    alerts = [a for a in facts.alerts if a.type == AlertType.DOOR_LOCKED_WHILE_OCCUPIED]
    evidence: dict[str, Any] = {
        "readings": len(known),
        "locked_readings": len(locked),
        "locked_at": [_t(r.ts) for r in locked[:EVIDENCE_KEPT]],
        "alerts": [_alert(a) for a in alerts],
    }
    if locked or alerts:
        first = min([r.ts for r in locked] + [a.raised_at for a in alerts])
        return (
            Outcome.FAIL,
            f"The door was reported locked during the episode (first at {_t(first)}).",
            evidence,
        )
    gaps = _gaps(facts, now, lambda r: r.door_locked is not None)
    evidence["gaps"] = gaps[:EVIDENCE_KEPT]
    if not known or gaps:
        return (
            Outcome.UNKNOWN,
            "No lock reading for part of the episode."
            if known
            else "No lock reading during the episode.",
            evidence,
        )
    return (
        Outcome.PENDING if facts.ended_at is None else Outcome.PASS,
        f"Unlocked in all {len(known)} readings.",
        evidence,
    )


def _alert(a: AlertFact) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "type": a.type,
        "raised_at": _t(a.raised_at),
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": _t(a.acknowledged_at),
        "resolved_at": _t(a.resolved_at),
    }


def _watched(facts: EpisodeFacts, now: datetime) -> Answer:
    rules = WatchRules.from_profile(facts.profile, facts.band)
    lapses = _lapses(facts, rules.lapse_after_s, now)
    alerts = [a for a in facts.alerts if a.type in _UNWATCHED]
    known = [r for r in facts.readings if r.staff_present is not None]
    within_ft = facts.profile.monitoring.staff_within_ft
    evidence: dict[str, Any] = {
        "lapse_after_s": rules.lapse_after_s,
        "continuous_required": rules.monitoring,
        # Illinois' two feet: no sensor measures it, so the verdict asks staff to confirm it.
        "staff_within_ft": within_ft,
        "readings": len(known),
        "lapses": lapses[:EVIDENCE_KEPT],
        "lapse_count": len(lapses),
        "alerts": [_alert(a) for a in alerts],
    }
    if lapses or alerts:
        return (
            Outcome.FAIL,
            f"{len(lapses) or len(alerts)} monitoring lapse(s) longer than "
            f"{rules.lapse_after_s:g} s.",
            evidence,
        )
    gaps = _gaps(facts, now, lambda r: r.staff_present is not None)
    evidence["gaps"] = gaps[:EVIDENCE_KEPT]
    if not known or gaps:
        return (
            Outcome.UNKNOWN,
            "No staff-presence reading for part of the episode."
            if known
            else "No staff-presence sensor reading during the episode.",
            evidence,
        )
    return (
        Outcome.PENDING if facts.ended_at is None else Outcome.PASS,
        f"Staff present in all {len(known)} readings, no lapse."
        + (
            f" The profile also asks the supervising adult to stay within {within_ft:g} ft"
            " (when an enclosure is used), which no sensor measures: confirm it in the record."
            if within_ft is not None
            else ""
        ),
        evidence,
    )


def _lapses(facts: EpisodeFacts, lapse_after_s: float, now: datetime) -> list[dict[str, Any]]:
    """The lapses the agent reported, then the staff absences the telemetry shows."""
    lapses: list[dict[str, Any]] = []
    # The agent's own facts: monitoring_lapse, then monitoring_restored with its length.
    open_lapse: datetime | None = None
    for e in sorted(facts.events, key=lambda e: e.ts):
        if e.type == "monitoring_lapse" and open_lapse is None:
            open_lapse = e.ts
        elif e.type == "monitoring_restored" and open_lapse is not None:
            lapses.append(_lapse(open_lapse, e.ts, "agent event"))
            open_lapse = None
    if open_lapse is not None:
        lapses.append(_lapse(open_lapse, facts.ended_at, "agent event"))
    # The telemetry: staff away longer than the profile allows.
    away: datetime | None = None
    for r in sorted(facts.readings, key=lambda r: r.ts):
        if r.staff_present is False and away is None:
            away = r.ts
        elif r.staff_present is not False and away is not None:
            if (r.ts - away).total_seconds() > lapse_after_s:
                lapses.append(_lapse(away, r.ts, "telemetry"))
            away = None
    if away is not None:
        end = facts.ended_at or now
        if (end - away).total_seconds() > lapse_after_s:
            lapses.append(_lapse(away, facts.ended_at, "telemetry"))
    return lapses


def _lapse(start: datetime, end: datetime | None, source: str) -> dict[str, Any]:
    seconds = round((end - start).total_seconds(), 1) if end else None
    return {"from": _t(start), "to": _t(end), "seconds": seconds, "source": source}


def _within_limit(facts: EpisodeFacts, now: datetime) -> Answer:
    rules = WatchRules.from_profile(facts.profile, facts.band)
    end = facts.ended_at or now
    elapsed = (end - facts.started_at).total_seconds()
    due, unmet = _checkpoints(facts, rules, elapsed)
    evidence: dict[str, Any] = {
        "duration_s": round(elapsed, 1),
        "limit_s": rules.limit_s,
        "basis": facts.profile.time_limit.basis,
        "hard_cap": facts.profile.time_limit.hard_cap,
        "checkpoints_due": due[:EVIDENCE_KEPT],
        "checkpoints_announced": facts.checkpoint_count,
        "checkpoints_unmet": len(unmet),
        "alerts": [_alert(a) for a in facts.alerts if a.type == AlertType.TIME_LIMIT_EXCEEDED],
    }
    over = rules.limit_s is not None and elapsed > rules.limit_s
    # A room's own time_limit_min replaces the number, not whether it may be extended.
    hard_cap = facts.profile.time_limit.hard_cap
    if over or unmet:
        why = []
        if over:
            assert rules.limit_s is not None
            why.append(
                f"lasted {elapsed / 60:.1f} min, past the {rules.limit_s / 60:g}-min limit"
                + (", a hard maximum that may not be extended" if hard_cap else "")
            )
        if unmet:
            why.append(f"{len(unmet)} checkpoint(s) without a staff check-in")
        return (Outcome.FAIL, "; ".join(why).capitalize() + ".", evidence)
    limit = (
        f"within the {rules.limit_s / 60:g}-min limit"
        if rules.limit_s is not None
        else "no numeric limit in the profile"
    )
    if facts.ended_at is None:
        return (Outcome.PENDING, f"Still open after {elapsed / 60:.1f} min ({limit}).", evidence)
    return (
        Outcome.PASS,
        f"Lasted {elapsed / 60:.1f} min, {limit}"
        + (f"; {len(due)} checkpoint(s) met." if due else "."),
        evidence,
    )


def _checkpoints(
    facts: EpisodeFacts, rules: WatchRules, elapsed: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every checkpoint occurrence due so far, and those no staff check-in met."""
    occurrences = sorted(
        (c.first_s + n * (c.every_s or 0), c.id, n + 1)
        for c in rules.checkpoints
        for n in range(c.occurrences_until(elapsed))
    )
    due: list[dict[str, Any]] = [
        {"checkpoint": cid, "occurrence": n, "due_s": at_s} for at_s, cid, n in occurrences
    ]
    checkins = sorted((e for e in facts.events if e.type == "staff_checkin"), key=lambda e: e.ts)
    # Each occurrence is met by a distinct staff check-in at or after it fell due.
    unmet, used = [], 0
    for d in due:
        due_at = facts.started_at.timestamp() + d["due_s"]
        while used < len(checkins) and checkins[used].ts.timestamp() < due_at:
            used += 1
        if used < len(checkins):
            d["met_by"] = checkins[used].fields.get("by")
            d["met_at"] = _t(checkins[used].ts)
            used += 1
        else:
            unmet.append(d)
    return due, unmet


def _environment(facts: EpisodeFacts, now: datetime) -> Answer:
    limits = EnvironmentLimits.from_profile(facts.profile)
    checks: dict[str, tuple[str, Any]] = {
        "temperature_c": ("temperature_c", limits.temperature_c.contains),
    }
    if limits.lux_min is not None:
        lux_min = limits.lux_min
        checks["lux"] = ("lux", lambda v: v >= lux_min)
    if limits.co2_max_ppm is not None:
        co2_max = limits.co2_max_ppm
        checks["co2_ppm"] = ("co2_ppm", lambda v: v <= co2_max)
    evidence: dict[str, Any] = {
        "limits": {
            "temperature_c": {"min": limits.temperature_c.min, "max": limits.temperature_c.max},
            "lux_min": limits.lux_min,
            "co2_max_ppm": limits.co2_max_ppm,
        }
    }
    failing, measured = [], 0
    for name, (attr, ok) in checks.items():
        values = [(r.ts, getattr(r, attr)) for r in facts.readings if getattr(r, attr) is not None]
        if not values:
            evidence[name] = {"readings": 0}
            continue
        measured += 1
        out = [(ts, v) for ts, v in values if not ok(v)]
        evidence[name] = {
            "readings": len(values),
            "min": min(v for _, v in values),
            "max": max(v for _, v in values),
            "outside": len(out),
            "first_outside_at": _t(out[0][0]) if out else None,
        }
        if out:
            failing.append(name)
    if failing:
        return (Outcome.FAIL, "Outside the limits: " + ", ".join(failing) + ".", evidence)
    if measured == 0:
        return (Outcome.UNKNOWN, "No environment reading during the episode.", evidence)
    return (
        Outcome.PENDING if facts.ended_at is None else Outcome.PASS,
        "Every reading within the limits.",
        evidence,
    )


def _parents_notified(facts: EpisodeFacts, now: datetime) -> Answer:
    rule = facts.profile.parent_notification
    deadline = notification_deadline(rule, facts.calendar, facts.started_at)
    record = facts.record
    at = record.parent_notified_at
    evidence: dict[str, Any] = {
        "rule": describe_notification_rule(rule),
        "deadline": _t(deadline),
        "notified_at": _t(at),
        "notified_by": record.parent_notified_by or None,
        "notified_whom": record.parent_notified_whom or None,
        "method": record.parent_notification_method.value
        if record.parent_notification_method
        else None,
    }
    if at is not None:
        late = (at - deadline).total_seconds()
        if late > 0:
            return (
                Outcome.FAIL,
                f"Notified {late / 3600:.1f} h after the deadline ({evidence['rule']}).",
                evidence,
            )
        return (Outcome.PASS, f"Notified at {_t(at)}, {evidence['rule']}.", evidence)
    if now > deadline:
        return (Outcome.FAIL, f"Not notified; the deadline passed at {_t(deadline)}.", evidence)
    return (Outcome.PENDING, f"Not notified yet; due by {_t(deadline)}.", evidence)


def _record_complete(facts: EpisodeFacts, now: datetime) -> Answer:
    missing = facts.record.missing()
    deadline = record_deadline(facts.calendar, facts.ended_at) if facts.ended_at else None
    evidence: dict[str, Any] = {
        "missing": missing,
        "missing_labels": [FIELD_LABELS[m] for m in missing],
        "version": facts.record_version,
        "updated_by": facts.record_updated_by,
        "updated_at": _t(facts.record_updated_at),
        "deadline": _t(deadline),
    }
    if not missing:
        return (
            Outcome.PASS,
            f"Complete (version {facts.record_version}, by {facts.record_updated_by}).",
            evidence,
        )
    if deadline is not None and now > deadline:
        return (
            Outcome.FAIL,
            f"{len(missing)} field(s) still empty after the deadline {_t(deadline)}.",
            evidence,
        )
    return (
        Outcome.PENDING,
        f"{len(missing)} field(s) still empty"
        + (f"; due by {_t(deadline)}." if deadline else " (episode open)."),
        evidence,
    )


#: The questions in order, each with the function that answers it.
_ITEMS: tuple[tuple[str, Callable[[EpisodeFacts, datetime], Answer]], ...] = (
    ("door_unlocked", _door_unlocked),
    ("watched", _watched),
    ("within_limit", _within_limit),
    ("environment", _environment),
    ("parents_notified", _parents_notified),
    ("record_complete", _record_complete),
)
