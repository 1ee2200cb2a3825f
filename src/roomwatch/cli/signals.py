"""SIGINT and SIGTERM: the one way a long-running command is asked to stop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("roomwatch")


def stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def wait_for_stop(stop: threading.Event, duration: float | None) -> None:
    """Block until SIGINT/SIGTERM (or ``duration`` seconds); the one stop event."""
    stop_on_signals(stop)
    stop.wait(duration)
