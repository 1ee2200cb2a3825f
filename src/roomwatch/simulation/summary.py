"""A simulation's result for people (plain text) and for programs (one JSON object)."""

from __future__ import annotations

import json

from roomwatch.simulation.expect import Outcome, clock
from roomwatch.simulation.report import Result
from roomwatch.simulation.scenario import Scenario


def as_json(result: Result, outcomes: list[Outcome]) -> str:
    """The same text for the same scenario, every run (times are seconds from the start)."""
    body = result.to_dict()
    body["expectations"] = [
        {"expected": o.expected, "met": o.met, "happened": o.happened} for o in outcomes
    ]
    return json.dumps(body, indent=2, ensure_ascii=False)


def as_text(scenario: Scenario, result: Result, outcomes: list[Outcome], source: str) -> str:
    rooms = ", ".join(f"{r.id} ({r.profile})" for r in scenario.rooms)
    lines = [f"{source}: {clock(scenario.duration_s)} of {rooms}", ""]
    lines.append(f"Episodes ({len(result.episodes)})")
    for e in result.episodes:
        end = f"{clock(e.end_s)}  ({clock(e.duration_s or 0)})" if e.end_s is not None else "open"
        lines.append(f"  {e.room:<12} {clock(e.start_s)} - {end}")
    lines.append(f"Alerts ({len(result.alerts)})")
    for a in result.alerts:
        what = f"{a.type}" + (f" [{a.subject}]" if a.subject else "") + (" late" if a.late else "")
        gone = f"resolved {clock(a.resolved_s)}" if a.resolved_s is not None else "open"
        lines.append(f"  {clock(a.raised_s):>8} {a.severity:<8} {a.room:<12} {what}  ({gone})")
    lines.append(f"Actions ({len(result.actions)})")
    for x in result.actions:
        lines.append(f"  {clock(x.at_s):>8} {x.room:<12} {x.action}")
    m = result.messages
    lines.append(
        f"Messages: {m.published} published, {m.delivered} delivered, {m.lost} lost, "
        f"{m.duplicates_stored} stored twice"
    )
    if outcomes:
        met = sum(o.met for o in outcomes)
        lines += ["", f"Expectations: {met} of {len(outcomes)} met"]
        lines += [f"  {o}" for o in outcomes]
    return "\n".join(lines)
