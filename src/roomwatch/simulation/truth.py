"""Alert truth for a generated school day: which alerts an incident explains, which
incidents went unalerted, and which alerts nothing explains.

An alert is *explained* when an injected incident in its room expects an alert of its
type and the alert was raised within that expectation's window (from the trigger to
its deadline, incidents.py). An expectation no alert met is a *missed* incident. An
alert no expectation explains is *unexplained*: in a day of ordinary use, a false alarm
(or a late one) until shown otherwise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from roomwatch.core.wire import AlertType, Severity
from roomwatch.simulation.day_record import Expected, Incident, SchoolDay, episode_slack_s
from roomwatch.simulation.day_record import settle_s as _settle_s
from roomwatch.simulation.expect import clock
from roomwatch.simulation.report import Alert, Result


@dataclass(frozen=True)
class Missed:
    incident: Incident
    expected: Expected


@dataclass(frozen=True)
class Unexplained:
    alert: Alert
    context: str  # what the room was doing then, from the day's record


@dataclass
class TypeTally:
    type: str
    true: list[Alert] = field(default_factory=list)
    missed: list[Missed] = field(default_factory=list)
    unexplained: list[Unexplained] = field(default_factory=list)


@dataclass(frozen=True)
class WrongEpisode:
    """A use of the room not recorded as one episode from entry to exit (within slack)."""

    room: str
    start_s: float
    exit_s: float
    recorded: list[tuple[float, float | None]]  # what the collector stored near it


@dataclass(frozen=True)
class DayTruth:
    day: SchoolDay
    by_type: dict[str, TypeTally]
    episodes_true: int = 0
    wrong_episodes: list[WrongEpisode] = field(default_factory=list)
    extra_episodes: list[tuple[str, float]] = field(default_factory=list)  # room, start

    @property
    def missed(self) -> list[Missed]:
        return [m for t in self.by_type.values() for m in t.missed]

    @property
    def unexplained(self) -> list[Unexplained]:
        return [u for t in self.by_type.values() for u in t.unexplained]

    def unexplained_of(self, severity: Severity) -> list[Unexplained]:
        return [u for u in self.unexplained if u.alert.severity == severity.value]

    @property
    def clean(self) -> bool:
        """Every incident alerted in time, no alert without an incident, every use recorded
        as one episode from entry to exit."""
        return (
            not self.missed
            and not self.unexplained
            and not self.wrong_episodes
            and not self.extra_episodes
        )


def _explains(e: Expected, incident: Incident, a: Alert) -> bool:
    return (
        a.room == incident.room
        and a.type == e.type.value
        and e.earliest_s <= a.raised_s <= e.deadline_s
    )


def _context(day: SchoolDay, a: Alert) -> str:
    calm = day.calm_at(a.room, a.raised_s)
    if calm is not None:
        noise = "; ".join(calm.noise) or "no noise"
        return (
            f"calm episode {clock(calm.start_s)}-{clock(calm.exit_s)} "
            f"(ending: {calm.ending}; {noise})"
        )
    settle = _settle_s()
    for i in day.incidents:
        if i.room == a.room and i.at_s - 60 <= a.raised_s <= i.until_s + settle:
            return f"during incident {i.kind.value} at {clock(i.at_s)} ({i.what})"
    return "between uses (the room empty)"


def judge_day(day: SchoolDay, result: Result) -> DayTruth:
    tallies = {t.value: TypeTally(t.value) for t in AlertType}
    explained: set[int] = set()
    for incident in (*day.incidents, *day.paperwork):
        for e in incident.expects:
            hits = [i for i, a in enumerate(result.alerts) if _explains(e, incident, a)]
            if hits:
                explained.update(hits)
            else:
                tallies[e.type.value].missed.append(Missed(incident, e))
    for i, a in enumerate(result.alerts):
        tally = tallies.setdefault(a.type, TypeTally(a.type))
        if i in explained:
            tally.true.append(a)
        else:
            tally.unexplained.append(Unexplained(a, _context(day, a)))
    uses = [(c.room, c.start_s, c.exit_s) for c in day.calm] + [
        (i.room, *i.episode) for i in day.incidents if i.episode is not None
    ]
    slack = episode_slack_s()
    matched: set[int] = set()
    wrong = []
    for room, start, exit_s in uses:
        near = [
            i
            for i, e in enumerate(result.episodes)
            if e.room == room and abs(e.start_s - start) <= slack
        ]
        matched.update(near)
        found = [result.episodes[i] for i in near]
        ok = (
            len(found) == 1 and found[0].end_s is not None and abs(found[0].end_s - exit_s) <= slack
        )
        if not ok:
            wrong.append(WrongEpisode(room, start, exit_s, [(e.start_s, e.end_s) for e in found]))
    extra = [(e.room, e.start_s) for i, e in enumerate(result.episodes) if i not in matched]
    return DayTruth(day, tallies, len(uses) - len(wrong), wrong, extra)


# ------------------------------------------------------------------ output


def _day_line(day: SchoolDay) -> str:
    rooms = ", ".join(
        r.id + f" ({r.profile}" + (f" {r.student_band.value}" if r.student_band else "") + ")"
        for r in day.scenario.rooms
    )
    return (
        f"School day, seed {day.seed}: {clock(day.scenario.duration_s)} of {rooms}; "
        f"{len(day.calm)} calm episodes, {len(day.incidents)} incidents"
    )


def as_text(truth: DayTruth) -> str:
    day = truth.day
    lines = [_day_line(day), ""]
    lines.append(f"{'alert type':<28} {'true':>5} {'missed':>7} {'unexplained':>12}")
    for t in truth.by_type.values():
        crit = sum(u.alert.severity == Severity.CRITICAL.value for u in t.unexplained)
        un = f"{len(t.unexplained)}" + (f" ({crit} crit)" if crit else "")
        lines.append(f"{t.type:<28} {len(t.true):>5} {len(t.missed):>7} {un:>12}")
    if day.paperwork:
        kinds = sorted({p.kind.value for p in day.paperwork})
        lines.append(
            f"paperwork nobody does in a generated day, expected on time: {len(day.paperwork)} "
            f"({', '.join(kinds)})"
        )
    if day.skipped:
        lines.append(f"not injected (no room of this day can raise them): {', '.join(day.skipped)}")
    lines += ["", "Incidents"]
    for i in sorted(day.incidents, key=lambda i: (i.at_s, i.room)):
        lines.append(f"  {clock(i.at_s):>8} {i.room:<9} {i.kind.value}: {i.what}")
    if truth.missed:
        lines += ["", f"Missed ({len(truth.missed)})"]
        for m in truth.missed:
            e = m.expected
            lines.append(
                f"  {m.incident.room:<9} {e.type.value} due {clock(e.earliest_s)}-"
                f"{clock(e.deadline_s)} ({e.why}) for: {m.incident.what}"
            )
    uses = truth.episodes_true + len(truth.wrong_episodes)
    lines += ["", f"Episodes: {truth.episodes_true} of {uses} recorded from entry to exit"]
    for w in truth.wrong_episodes:
        stored = ", ".join(
            f"{clock(a)}-{clock(b) if b is not None else 'open'}" for a, b in w.recorded
        )
        lines.append(
            f"  {w.room:<9} {clock(w.start_s)}-{clock(w.exit_s)} recorded as: {stored or 'nothing'}"
        )
    for room, start in truth.extra_episodes:
        lines.append(f"  {room:<9} an episode from {clock(start)} that no use of the room explains")
    if truth.unexplained:
        lines += ["", f"Unexplained alerts ({len(truth.unexplained)})"]
        for u in truth.unexplained:
            a = u.alert
            what = a.type + (f" [{a.subject}]" if a.subject else "")
            lines.append(
                f"  {clock(a.raised_s):>8} {a.severity:<8} {a.room:<9} {what}: {u.context}"
            )
    lines += [
        "",
        "Every incident alerted in time, no alert unexplained, every episode true."
        if truth.clean
        else f"{len(truth.missed)} missed, {len(truth.unexplained)} unexplained "
        f"({len(truth.unexplained_of(Severity.CRITICAL))} critical), "
        f"{len(truth.wrong_episodes) + len(truth.extra_episodes)} episode(s) misrecorded.",
    ]
    return "\n".join(lines)


def as_json(truth: DayTruth, result: Result) -> str:
    day = truth.day
    body: dict[str, Any] = {
        "seed": day.seed,
        "duration_s": day.scenario.duration_s,
        "rooms": [
            {
                "id": r.id,
                "profile": r.profile,
                "student_band": r.student_band.value if r.student_band else None,
            }
            for r in day.scenario.rooms
        ],
        "calm_episodes": [asdict(c) for c in day.calm],
        "incidents": [asdict(i) for i in day.incidents],
        "not_injected": list(day.skipped),
        "paperwork": [asdict(p) for p in day.paperwork],
        "by_type": {
            t.type: {
                "true": len(t.true),
                "missed": [
                    {"room": m.incident.room, "incident": m.incident.what, **asdict(m.expected)}
                    for m in t.missed
                ],
                "unexplained": [{**asdict(u.alert), "context": u.context} for u in t.unexplained],
            }
            for t in truth.by_type.values()
        },
        "episodes": {
            "true": truth.episodes_true,
            "wrong": [asdict(w) for w in truth.wrong_episodes],
            "extra": [{"room": r, "start_s": t} for r, t in truth.extra_episodes],
        },
        "clean": truth.clean,
        "result": result.to_dict(),
    }
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)
