"""Keeping channel secrets out of error texts and log records.

A channel's URL carries passwords and tokens, and Apprise's and urllib3's debug
lines name the webhook path. While the dispatcher runs, a filter on each logger
that may name a URL replaces every known secret with ``***`` and, for Apprise,
drops the lines below WARNING unless its logger was given a level explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

MASK = "***"

# Outside loggers whose records may name a channel's URL.
THIRD_PARTY_LOGGERS = (
    "apprise",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
)
_QUIETED = "apprise"  # its lines below WARNING are dropped unless asked for


class Scrubber:
    """Replaces every known secret in a text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret that contains a shorter one is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class ScrubbingFilter(logging.Filter):
    """Scrubs secrets out of a logger's records; optionally drops those below WARNING."""

    def __init__(self, scrub: Scrubber, quiet: logging.Logger | None = None) -> None:
        super().__init__()
        self._scrub = scrub
        self._quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            self._quiet is not None
            and record.levelno < logging.WARNING
            and self._quiet.level == logging.NOTSET
        ):
            return False
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's to report, not ours
            return True
        clean = self._scrub(message)
        trace = record.exc_text
        if trace is None and record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
        if trace:
            clean_trace = self._scrub(trace)
            if clean_trace != trace:
                clean = f"{clean}\n{clean_trace}"
                record.exc_info = None
                record.exc_text = None
        if clean != message:
            record.msg = clean
            record.args = None
        return True


class ScrubbedLoggers:
    """The scrubbing filters of a set of loggers, installed and removed together."""

    def __init__(self, scrub: Scrubber, names: Iterable[str]) -> None:
        self._filters = []
        for name in names:
            logger = logging.getLogger(name)
            quiet = logger if name == _QUIETED else None
            self._filters.append((logger, ScrubbingFilter(scrub, quiet)))
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            for logger, log_filter in self._filters:
                logger.addFilter(log_filter)
            self._installed = True

    def remove(self) -> None:
        if self._installed:
            for logger, log_filter in self._filters:
                logger.removeFilter(log_filter)
            self._installed = False


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self._thread


@contextmanager
def silenced_here(name: str) -> Iterator[None]:
    """Drop the records ``name`` logs from the calling thread meanwhile (others' pass)."""
    logger = logging.getLogger(name)
    log_filter = _ThisThread()
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)
