"""Is the collector alive? systemd's watchdog heartbeat, and what a stall of its own means.

* The heartbeat (``WATCHDOG=1``) goes to systemd only while each of the collector's working
  parts shows a sign of life: paho's network thread (running, and not stuck in a message
  handler), the database writer and the rules tick. When one hangs, the heartbeat stops and
  systemd kills and restarts the collector (``WatchdogSec=`` in its unit).
* A collector that was itself stalled (SIGSTOP, a suspended VM, a machine swapping) heard
  nothing while it was stopped: that silence is its own, not the agents'. Its tick sees the
  gap and moves every room's "last heard" forward by it (:func:`forgive`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import replace
from datetime import datetime, timedelta

from roomwatch.core.room_view import RoomView
from roomwatch.transport import systemd

log = logging.getLogger(__name__)

#: A gap between two ticks of more than this many tick intervals is a stall of the collector.
STALL_TICKS = 5
#: ...and of at least this long (a tick that is a little late is not a stall).
STALL_MIN_S = 2.0

#: A liveness check: None when alive, otherwise what is wrong.
Check = Callable[[], str | None]


class Beat:
    """A part's last sign of life (``time.monotonic()``), set by the part itself."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = time.monotonic()

    def now(self) -> None:
        self.at = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.at


def stale(name: str, beat: Beat, limit_s: float) -> Check:
    """A check that fails when ``beat`` is older than ``limit_s``."""

    def check() -> str | None:
        age = beat.age()
        return f"{name}: no sign of life for {age:.1f} s" if age > limit_s else None

    return check


class Heartbeat:
    """Sends ``WATCHDOG=1`` when every check passes; otherwise logs what failed, once per
    beat, and sends nothing (systemd then restarts the collector)."""

    def __init__(self, checks: Mapping[str, Check]) -> None:
        self.checks = dict(checks)

    def problems(self) -> list[str]:
        found = []
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # noqa: BLE001 - a failing check is a failing part
                problem = f"{name}: check failed ({exc})"
            if problem is not None:
                found.append(problem)
        return found

    def beat(self) -> bool:
        problems = self.problems()
        if problems:
            log.error(
                "withholding the systemd watchdog so that systemd restarts the collector: %s",
                "; ".join(problems),
            )
            return False
        systemd.notify("WATCHDOG=1")
        return True


def stall_of(previous: datetime | None, now: datetime, tick_s: float) -> timedelta | None:
    """How long the collector itself was stalled, judging by the gap between two ticks."""
    if previous is None:
        return None
    late = (now - previous).total_seconds() - tick_s
    if late < max(STALL_TICKS * tick_s, STALL_MIN_S):
        return None
    return timedelta(seconds=late)


def forgive(
    views: MutableMapping[tuple[str, str], RoomView], stalled: timedelta, now: datetime
) -> None:
    """Silence is measured from when the collector could listen: each room's last-heard moves
    forward by the stall (never past ``now``)."""
    for key, view in views.items():
        if view.last_heard is not None:
            views[key] = replace(view, last_heard=min(now, view.last_heard + stalled))
