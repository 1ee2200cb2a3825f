"""The command line's log lines: text for people, JSON for journald, Loki and friends."""

from __future__ import annotations

import json
import logging
import sys

#: Libraries whose info lines would bury the programs' own.
QUIET_LOGGERS = (
    "amqtt",
    "transitions",
    "alembic",
    "apscheduler",
    "roomwatch.transport.client.paho",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for journald, Loki, Elastic and friends."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
