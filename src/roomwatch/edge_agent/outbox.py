"""The agent's on-disk outbox: every sequenced message, kept until the collector stored it.

SQLite in WAL mode with ``synchronous=FULL``. A sequence number and its
message are written in one transaction, so a number is never reused and
never skipped, even across a crash or power cut. A row leaves only when the
collector's ``ack`` says it has stored every message up to it: a broker's
PUBACK is not enough (a broker that crashes before it saves loses what it
acknowledged).

The outbox is bounded. When full, the oldest *telemetry* goes first (the
next reading supersedes it); episode and event messages are never dropped.
A run of consecutive telemetry numbers a..b is replaced by one
``telemetry_dropped`` event numbered b that names the run, so every sequence
number stays accounted for and the collector's acknowledgement never has to
guess past a hole.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from roomwatch.core import wire

log = logging.getLogger(__name__)

# At ~406 bytes a message (measured), 100,000 messages take about 40 MB: 28 hours
# of telemetry at 1 Hz, or 11.6 days at the default telemetry_interval_s of 10 s.
DEFAULT_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: str
    topic: str
    payload: bytes


class OutboxError(RuntimeError):
    """The outbox could not store a message (disk full, file damaged)."""


class Outbox:
    def __init__(self, path: Path, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 10:
            raise ValueError("outbox capacity must be at least 10 messages")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.capacity = capacity
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS counters (
                name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO counters VALUES ('last_seq', -1), ('acked', -1), ('dropped', 0);
            CREATE TABLE IF NOT EXISTS open_episode (
                id INTEGER PRIMARY KEY CHECK (id = 0), episode_id TEXT NOT NULL,
                started_at TEXT NOT NULL, reason TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS outbox (
                seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,
                topic TEXT NOT NULL, payload BLOB NOT NULL);
            """
        )
        self._count = self._scalar("SELECT count(*) FROM outbox")

    def _scalar(self, sql: str, *args: object) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _counter(self, name: str) -> int:
        return self._scalar("SELECT value FROM counters WHERE name = ?", name)

    # --------------------------------------------------------------- writing

    def append(self, kind: str, topic: str, build: Callable[[int], bytes]) -> int:
        """Reserve the next sequence number, build the payload with it, store both atomically."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._counter("last_seq") + 1
                payload = build(seq)
                self._db.execute("UPDATE counters SET value = ? WHERE name = 'last_seq'", (seq,))
                self._db.execute(
                    "INSERT INTO outbox (seq, kind, topic, payload) VALUES (?, ?, ?, ?)",
                    (seq, kind, topic, payload),
                )
                self._count += 1
                if self._count > self.capacity:
                    self._drop_oldest_telemetry()
                self._db.execute("COMMIT")
                return seq
            except BaseException as exc:
                self._undo()
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(
                        f"outbox {self.path}: cannot store a {kind} message: {exc}"
                    ) from exc
                raise

    def _undo(self) -> None:
        """Roll back a failed append; the file may be the thing that failed."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._count = self._scalar("SELECT count(*) FROM outbox")
        except sqlite3.Error:
            log.exception("outbox %s: cannot recover after a failed write", self.path)

    def _drop_oldest_telemetry(self) -> None:
        # Free a tenth of the capacity at once, so a full outbox does not compact on every append.
        target = self._count - self.capacity + max(1, self.capacity // 10)
        rows = self._db.execute(
            "SELECT seq, kind, topic, payload FROM outbox ORDER BY seq LIMIT ?",
            (self._count,),
        )
        runs: list[list[tuple[int, str, bytes]]] = []
        freed = 0
        for seq, kind, topic, payload in rows:
            if freed >= target:
                break
            if kind != "telemetry":
                if runs and runs[-1]:
                    runs.append([])  # an event or episode breaks the run
                continue
            if not runs or (runs[-1] and runs[-1][-1][0] != seq - 1):
                runs.append([])
            runs[-1].append((int(seq), str(topic), bytes(payload)))
            freed += 1 if len(runs[-1]) > 1 else 0
        dropped = 0
        for run in runs:
            if len(run) < 2:
                continue  # a lone reading frees nothing when replaced by a summary
            dropped += self._summarise(run)
        if dropped:
            self._db.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'dropped'", (dropped,)
            )
            log.warning(
                "outbox full (%d messages): %d oldest telemetry readings summarised as dropped",
                self.capacity,
                dropped,
            )
        if self._count > self.capacity:
            log.error(
                "outbox over capacity with %d messages it may not drop; keeping them all",
                self._count,
            )

    def _summarise(self, run: list[tuple[int, str, bytes]]) -> int:
        """Replace telemetry rows first..last with one event numbered last."""
        first, last = run[0][0], run[-1][0]
        topic = wire.parse_topic(run[-1][1])
        ts = json.loads(run[-1][2])["ts"]
        summary = wire.Event.model_validate(
            {
                "id": uuid.uuid4().hex,
                "seq": last,
                "ts": ts,
                "site": topic.site,
                "room": topic.room,
                "type": "telemetry_dropped",
                "first_seq": first,
                "last_seq": last,
                "count": len(run),
            }
        )
        self._db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last))
        self._db.execute(
            "INSERT INTO outbox (seq, kind, topic, payload) VALUES (?, 'event', ?, ?)",
            (last, wire.topic_of(summary), wire.encode(summary)),
        )
        self._count -= len(run) - 1
        return len(run)

    def ack(self, seq: int) -> int:
        """The collector stored everything up to ``seq``: forget it. Returns how many rows went."""
        with self._lock:
            if seq <= self._counter("acked"):
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,)).rowcount
            self._db.execute("UPDATE counters SET value = ? WHERE name = 'acked'", (seq,))
            self._db.execute("COMMIT")
            self._count -= gone
            return gone

    # ------------------------------------------------------ the open episode

    def save_episode(self, episode_id: str | None, started_at: str = "", reason: str = "") -> None:
        """Remember the open episode (or that none is open) across a crash."""
        with self._lock:
            if episode_id is None:
                self._db.execute("DELETE FROM open_episode")
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO open_episode VALUES (0, ?, ?, ?)",
                    (episode_id, started_at, reason),
                )

    def open_episode(self) -> tuple[str, str, str] | None:
        """(episode_id, started_at, reason) of the episode open at the last stop, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT episode_id, started_at, reason FROM open_episode"
            ).fetchone()
        return (str(row[0]), str(row[1]), str(row[2])) if row else None

    # --------------------------------------------------------------- reading

    def after(self, seq: int, limit: int = 100) -> list[OutboxRow]:
        """Unacknowledged rows with a sequence number above ``seq``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [OutboxRow(int(s), str(k), str(t), bytes(p)) for s, k, t, p in rows]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._counter("last_seq")

    @property
    def acked(self) -> int:
        with self._lock:
            return self._counter("acked")

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._counter("dropped")

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
