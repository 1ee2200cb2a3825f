"""Noticing that another client is using our MQTT client id.

A broker lets only one connection per client id: a second client connecting with the same
id knocks the first one off (MQTT 5 says so with reason 0x8E "Session taken over"; under
MQTT 3.1.1 the broker just closes the socket). Both then reconnect and knock each other off
in turn. One unexpected disconnect is a network hiccup; several within a minute, or the
MQTT 5 reason, is a takeover: a second program configured with the same name, or someone
borrowing the id. The cure is in the broker: client ids bound to user names
(``use_username_as_clientid true``, docs/operations.md).
"""

from __future__ import annotations

import time
from collections import deque

#: Unexpected disconnects within TAKEOVER_WINDOW_S that mean a takeover.
TAKEOVER_DISCONNECTS = 3
TAKEOVER_WINDOW_S = 60.0
#: MQTT 5's reason code "Session taken over".
SESSION_TAKEN_OVER = 0x8E


class TakeoverWatch:
    """Counts unexpected disconnects and says when they add up to a takeover."""

    def __init__(self) -> None:
        self.disconnects = 0
        self.takeovers = 0
        self.last_takeover: float | None = None  # time.monotonic()
        self._recent: deque[float] = deque()

    def disconnected(self, reason: int | None) -> bool:
        """An unexpected disconnect (``reason``: the MQTT reason code, if any); True when it
        is (part of) a takeover."""
        now = time.monotonic()
        self.disconnects += 1
        self._recent.append(now)
        while self._recent and now - self._recent[0] > TAKEOVER_WINDOW_S:
            self._recent.popleft()
        if reason == SESSION_TAKEN_OVER or len(self._recent) >= TAKEOVER_DISCONNECTS:
            self.takeovers += 1
            self.last_takeover = now
            return True
        return False

    def recent_disconnects(self) -> int:
        return len(self._recent)

    def recent(self) -> bool:
        """A takeover within the last window (for the health check)."""
        last = self.last_takeover
        return last is not None and time.monotonic() - last <= TAKEOVER_WINDOW_S
