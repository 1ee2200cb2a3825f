"""Is a TCP port free to listen on? Asked before a program starts, so that a port in use is
one line saying which port, what wanted it and what to do, not a traceback from deep inside
a server library (or a program that says "Open http://..." and serves nothing)."""

from __future__ import annotations

import errno
import socket


class PortInUseError(OSError):
    """The port is taken (or cannot be had); the message says what to do."""


def check_free(host: str, port: int, what: str, fix: str) -> None:
    """PortInUseError naming ``what`` wanted the port and ``fix`` when nobody may listen on
    ``host:port`` now. Port 0 (any free port) is always free."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers bind: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason = "is in use by another program"
            elif exc.errno == errno.EACCES:
                reason = "needs privileges this user lacks (ports below 1024)"
            else:
                reason = f"cannot be used ({exc.strerror or exc})"
            raise PortInUseError(f"port {port} on {host} ({what}) {reason}: {fix}") from None
