"""The agent's message sequence number, kept on disk across restarts.

SQLite in WAL mode, one row, one committed transaction per number: a number
is never handed out twice, even after a crash or a power cut, so the
collector can tell a gap (a lost message) from a restart.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SequenceStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sequence "
            "(id INTEGER PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL)"
        )
        self._db.execute("INSERT OR IGNORE INTO sequence (id, last) VALUES (0, -1)")

    def next(self) -> int:
        """The next number, durably reserved before it is returned."""
        with self._lock:
            row = self._db.execute(
                "UPDATE sequence SET last = last + 1 WHERE id = 0 RETURNING last"
            ).fetchone()
            return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
