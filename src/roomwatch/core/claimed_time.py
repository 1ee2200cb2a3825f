"""Times an agent claims, and whether to believe them. Pure.

An agent's clock can be wrong (a dead RTC battery, no NTP yet) and a message
can lie, so the collector never orders an agent's messages by the time they
claim (that is what ``seq`` is for) and only believes a claimed time inside a
window around its own clock: behind by at most the outbox's longest backlog
(a message may wait that long in the agent's outbox), ahead by a small skew.
A message with a time outside the window is kept as it came, flagged, and
judged as if it had happened when it arrived (docs/wire-protocol.md, "Time
and order").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from roomwatch.core import wire
from roomwatch.core.rules import Condition
from roomwatch.core.wire import AlertType, Severity

#: The outbox holds 11.6 days of telemetry at its defaults (edge_agent/outbox.py); a
#: little more than that is the longest a genuine message can wait.
DEFAULT_BEHIND_S = 14 * 24 * 3600.0
#: Ahead: network latency and an NTP-disciplined clock are well under this.
DEFAULT_AHEAD_S = 120.0


@dataclass(frozen=True, slots=True)
class TimeWindow:
    behind_s: float = DEFAULT_BEHIND_S
    ahead_s: float = DEFAULT_AHEAD_S

    def skew(self, claimed: datetime, received_at: datetime) -> float | None:
        """Seconds ``claimed`` lies outside the window (positive: ahead), or None inside it."""
        offset = (claimed - received_at).total_seconds()
        if offset > self.ahead_s or offset < -self.behind_s:
            return offset
        return None


def _times(message: wire.Message) -> list[tuple[str, datetime]]:
    found = [("ts", message.ts)]
    if isinstance(message, wire.Episode):
        found.append(("started_at", message.started_at))
        if message.ended_at is not None:
            found.append(("ended_at", message.ended_at))
    return found


@dataclass(frozen=True, slots=True)
class Judged:
    """A message as the collector judges it, and the skew that made it so (None: trusted)."""

    message: wire.Message
    skew_s: float | None


def judge(message: wire.Message, received_at: datetime, window: TimeWindow | None) -> Judged:
    """``message`` with every claimed time outside ``window`` replaced by ``received_at``.

    The skew reported is the message's own ``ts`` offset when that is out, else the first
    other time that is (an episode that claims to have started in year 1). A status is
    judged too (its time orders the stored agent rows), but its skew says nothing about the
    agent's clock: its ``ts`` is when its connection began (docs/wire-protocol.md), and a
    retained one can be days old; the room view counts only sequenced messages' skew."""
    if window is None:
        return Judged(message, None)
    out = {
        name: skew
        for name, value in _times(message)
        if (skew := window.skew(value, received_at)) is not None
    }
    if not out:
        return Judged(message, None)
    judged = message.model_copy(update=dict.fromkeys(out, received_at))
    return Judged(judged, out.get("ts", next(iter(out.values()))))


def describe_skew(skew_s: float) -> str:
    """``3 d 4 h ahead``, ``2025 years behind``: the size of a skew, for people."""
    ahead = "ahead" if skew_s > 0 else "behind"
    size = abs(skew_s)
    if size >= 365 * 86400:
        return f"{size / (365.25 * 86400):.0f} years {ahead}"
    if size >= 86400:
        return f"{size / 86400:.1f} days {ahead}"
    if size >= 3600:
        return f"{size / 3600:.1f} h {ahead}"
    return f"{size:.0f} s {ahead}"


def skew_conditions(skew_s: float | None) -> list[Condition]:
    """The room's ``clock_skew`` warning while its agent's last message was out of the window."""
    if skew_s is None:
        return []
    return [
        Condition(
            AlertType.CLOCK_SKEW,
            Severity.WARNING,
            f"The agent's clock is off by {describe_skew(skew_s)}: its messages are judged "
            "by when they arrived. Check the device's time (NTP, RTC battery).",
            None,
        )
    ]
