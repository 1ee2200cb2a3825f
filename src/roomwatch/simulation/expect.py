"""Hold a simulation's result against the scenario's expectations, in words people read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from roomwatch.simulation.report import Result
from roomwatch.simulation.scenario import (
    EpisodeEdge,
    ExpectAction,
    ExpectAlert,
    Expectation,
    ExpectEpisode,
    ExpectNoAction,
    ExpectNoAlert,
    Scenario,
    Window,
)


@dataclass(frozen=True)
class Outcome:
    expected: str
    met: bool
    happened: str

    def __str__(self) -> str:
        mark = "met" if self.met else "NOT MET"
        return f"[{mark}] expected {self.expected}\n         happened: {self.happened}"


def clock(seconds: float) -> str:
    """Seconds from the start as m:ss (or h:mm:ss), for people."""
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    frac = f"{seconds - whole:.3f}".lstrip("0") if seconds != whole else ""
    return f"{h}:{m:02d}:{s:02d}{frac}" if h else f"{m}:{s:02d}{frac}"


def _within(at: float | None, window: Window | None) -> bool:
    return window is None or (at is not None and window[0] <= at <= window[1])


def _window(window: Window | None, verb: str) -> str:
    if window is None:
        return ""
    return f"{' ' + verb if verb else ''} between {clock(window[0])} and {clock(window[1])}"


def _room(room: str | None) -> str:
    return f" in {room}" if room else ""


def _count(count: int | None, found: int) -> bool:
    return found == count if count is not None else found >= 1


def _times(times: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{room} at {clock(at)}" for room, at in times[:8]) + (
        f" (and {len(times) - 8} more)" if len(times) > 8 else ""
    )


def _alert(e: ExpectAlert, result: Result) -> Outcome:
    kind = [a for a in result.alerts if a.type == e.alert.value and e.room in (None, a.room)]
    sev = [a for a in kind if e.severity is None or a.severity == e.severity.value]
    matching = [
        a
        for a in sev
        if _within(a.raised_s, e.between) and _within(a.resolved_s, e.resolved_between)
    ]
    severity = f"{e.severity.value} " if e.severity else ""
    times = "exactly " + str(e.count) + " " if e.count is not None else ""
    expected = (
        f"{times}{severity}{e.alert.value} alert(s){_room(e.room)}"
        + _window(e.between, "raised")
        + _window(e.resolved_between, "and resolved")
    )
    if not kind:
        others = sorted({a.type for a in result.alerts})
        happened = f"no {e.alert.value} alert{_room(e.room)}; raised: " + (
            ", ".join(others) or "no alerts at all"
        )
    else:
        happened = "; ".join(
            f"{a.severity} {a.type} in {a.room} raised at {clock(a.raised_s)}, "
            + (f"resolved at {clock(a.resolved_s)}" if a.resolved_s is not None else "unresolved")
            for a in kind[:8]
        ) + (f" (and {len(kind) - 8} more)" if len(kind) > 8 else "")
    return Outcome(expected, _count(e.count, len(matching)), happened)


def _no_alert(e: ExpectNoAlert, result: Result) -> Outcome:
    found = [
        (a.room, a.raised_s)
        for a in result.alerts
        if a.type == e.no_alert.value
        and e.room in (None, a.room)
        and _within(a.raised_s, e.between)
    ]
    expected = f"no {e.no_alert.value} alert{_room(e.room)}" + _window(e.between, "raised")
    happened = f"raised {len(found)}: {_times(found)}" if found else "none raised"
    return Outcome(expected, not found, happened)


def _episode(e: ExpectEpisode, result: Result) -> Outcome:
    started = e.episode is EpisodeEdge.STARTED
    edges = [
        (x.room, x.start_s if started else x.end_s)
        for x in result.episodes
        if e.room in (None, x.room)
    ]
    times = [(room, at) for room, at in edges if at is not None]
    matching = [t for t in times if _within(t[1], e.between)]
    count = f"exactly {e.count} " if e.count is not None else "an "
    expected = f"{count}episode {e.episode.value}{_room(e.room)}" + _window(e.between, "")
    happened = f"episodes {e.episode.value}: {_times(times)}" if times else "none"
    return Outcome(expected, _count(e.count, len(matching)), happened)


def _action(e: ExpectAction | ExpectNoAction, result: Result) -> Outcome:
    name = e.action if isinstance(e, ExpectAction) else e.no_action
    times = [
        (a.room, a.at_s) for a in result.actions if a.action == name and e.room in (None, a.room)
    ]
    matching = [t for t in times if _within(t[1], e.between)]
    happened = f"{name}: {_times(times)}" if times else f"no {name} at all"
    if isinstance(e, ExpectNoAction):
        expected = f"no {name}{_room(e.room)}" + _window(e.between, "")
        return Outcome(expected, not matching, happened)
    count = f"exactly {e.count}x " if e.count is not None else ""
    expected = f"{count}action {name}{_room(e.room)}" + _window(e.between, "")
    return Outcome(expected, _count(e.count, len(matching)), happened)


def judge(expectation: Expectation, result: Result) -> Outcome:
    match expectation:
        case ExpectAlert():
            return _alert(expectation, result)
        case ExpectNoAlert():
            return _no_alert(expectation, result)
        case ExpectEpisode():
            return _episode(expectation, result)
        case _:
            return _action(expectation, result)


def check(scenario: Scenario, result: Result) -> list[Outcome]:
    """One outcome per expectation, in the file's order."""
    return [judge(e, result) for e in scenario.expect]
