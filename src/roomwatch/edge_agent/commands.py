"""Which commands the agent obeys: each id once, and only inside a time window.

A command is refused when its ``ts`` is older than :data:`COMMAND_MAX_AGE_S` (queued for
the agent while it was away: starting or ending an episode now would be wrong) or more than
:data:`COMMAND_MAX_AHEAD_S` ahead of the agent's clock (a future time would otherwise pass
the age check forever), and when its id was obeyed already (QoS 1 delivers at least once,
and anyone can replay a captured command). Ids are remembered while their command could
still pass the time check, at most :data:`IDS_KEPT` of them.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from roomwatch.core import wire

#: A command older than this when it arrives (queued while the agent was away) is ignored.
COMMAND_MAX_AGE_S = 120
#: A command from further ahead than this of the agent's clock is ignored.
COMMAND_MAX_AHEAD_S = 30
#: The most command ids remembered (older ones fail the age check anyway).
IDS_KEPT = 1000


class CommandGate:
    def __init__(self) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def refusal(self, command: wire.Command, now: datetime) -> str | None:
        """Why ``command`` must not run (None: run it, and it is remembered)."""
        age = (now - command.ts).total_seconds()
        if age > COMMAND_MAX_AGE_S:
            return f"it is from {age:.0f} s ago"
        if -age > COMMAND_MAX_AHEAD_S:
            return f"its time is {-age:.0f} s ahead of this agent's clock"
        self._forget_before(now - timedelta(seconds=COMMAND_MAX_AGE_S))
        if command.id in self._seen:
            return f"command {command.id} was carried out already"
        self._seen[command.id] = command.ts
        while len(self._seen) > IDS_KEPT:
            self._seen.popitem(last=False)
        return None

    def _forget_before(self, cutoff: datetime) -> None:
        # Oldest first by arrival, which is close to by time; stop at the first one kept.
        while self._seen:
            first_id, ts = next(iter(self._seen.items()))
            if ts >= cutoff:
                return
            del self._seen[first_id]
