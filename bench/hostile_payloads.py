"""Database and RSS growth of the collector per 10,000 hostile payloads (issue 14).

``PYTHONPATH=src python bench/hostile_payloads.py [--caps default|off] [--payloads N]``

The payloads are tests/hostile.py's seeded stream (random bytes, truncated JSON, NaN,
deep nesting, strings up to the size limit and 1 MB past it, wrong types, lone surrogates,
bad UTF-8, years 1 and 9999, replays, forged sequence numbers), put straight into the
collector's message handler: no broker, so nothing is dropped before the collector (the
worst case; a broker with message_size_limit drops the oversize ones). A warm-up of 1,000
payloads comes first, so imports and caches are not counted. Prints one JSON object.

Runs against older versions too (the "before" figures in docs/benchmarks.md were measured
with PYTHONPATH pointing at the source before the wire hardening).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import Hostile
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def checkpointed(path: Path) -> int:
    """The database's size with its WAL folded in (the file, not the log)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db_bytes(path)


def drained(collector: Collector) -> None:
    """Until the writer has taken everything queued (a benchmark may poll; tests may not)."""
    while collector.writer.depth():
        time.sleep(0.05)
    time.sleep(0.5)  # the writer's last batch (it gathers for 50 ms, then commits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--caps", choices=["default", "off"], default="default")
    parser.add_argument("--payloads", type=int, default=10_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    db = folder / "c.db"
    settings: dict[str, Any] = {}
    if args.caps == "off" and "dead_letters_total" in CollectorConfig.model_fields:
        settings = {"dead_letters_per_agent": 10**9, "dead_letters_total": 10**9}
    clock = VirtualClock()
    collector = Collector(
        CollectorConfig(
            mqtt=MqttSettings(port=1), database_url=f"sqlite:///{db}", http_port=None, **settings
        ),
        clock,
    )
    collector.open()
    hostile = Hostile(2026, clock.now())
    n = 0

    def burst(count: int) -> int:
        nonlocal n
        sent_bytes = 0
        for _ in range(count):
            payload = hostile.payload(n)
            n += 1
            sent_bytes += len(payload.body)
            collector.on_message(payload.topic, payload.body)
        drained(collector)
        return sent_bytes

    burst(1000)
    db_before = checkpointed(db)
    rss_before = rss_bytes()
    invalid_before = collector.counters.invalid
    sent = burst(args.payloads)
    rss_after = rss_bytes()
    counters = collector.counters
    collector.stop()
    db_after = checkpointed(db)
    per = 10_000 / args.payloads
    print(
        json.dumps(
            {
                "payloads": args.payloads,
                "payload_mb": round(sent / 1e6, 1),
                "caps": args.caps,
                "invalid": counters.invalid - invalid_before,
                "dead_letters_dropped": getattr(counters, "dead_letters_dropped", None),
                "db_growth_mb_per_10k": round((db_after - db_before) * per / 1e6, 2),
                "rss_growth_mb_per_10k": round((rss_after - rss_before) * per / 1e6, 1),
                "pid": os.getpid(),
            }
        )
    )


if __name__ == "__main__":
    main()
