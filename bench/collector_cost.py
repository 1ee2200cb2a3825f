"""The collector's CPU per message, in one process, without a broker: ``on_message`` (decode,
rules) and the writer (``Store.write_batch`` into SQLite, progress and acks) at several batch
sizes. A profiling aid for the ingest findings (docs/benchmarks.md), not part of ``run.py``.

Run: ``python bench/collector_cost.py [--messages 20000] [--rooms 200]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import loadgen

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core.clock import WallClock
from roomwatch.firmware_config.mqtt import MqttSettings


def measure(messages: int, rooms: int, batch: int, folder: Path) -> dict[str, float]:
    stamp = loadgen._Stamp()
    names = [f"room-{i:04d}" for i in range(rooms)]
    traffic = [
        (
            f"roomwatch/v1/bench/{names[i % rooms]}/telemetry",
            loadgen.telemetry("bench", names[i % rooms], f"b{batch}-{i}", i // rooms, stamp.now()),
        )
        for i in range(messages)
    ]
    config = CollectorConfig(
        database_url=f"sqlite:///{folder / f'b{batch}.db'}",
        http_port=None,
        mqtt=MqttSettings(port=1),  # never connected: acks queue in paho, unsent
    )
    collector = Collector(config, WallClock())
    collector.open()
    collector.writer.stop(timeout=30)  # this process writes the batches itself
    items: list[Any] = []
    collector.writer.put = items.append  # type: ignore[method-assign]
    started = time.process_time()
    for topic, payload in traffic:
        collector.on_message(topic, payload)
    handled = time.process_time()
    for start in range(0, len(items), batch):
        collector.writer.write(items[start : start + batch])
    written = time.process_time()
    collector.store.engine.dispose()
    return {
        "batch": batch,
        "on_message_us": (handled - started) / messages * 1e6,
        "write_us": (written - handled) / messages * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rooms", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-cost-") as tmp:
        print("| batch | on_message µs CPU/msg | writer µs CPU/msg |")
        print("|---|---|---|")
        for batch in (20, 100, 500, 2000):
            r = measure(args.messages, args.rooms, batch, Path(tmp))
            print(f"| {batch} | {r['on_message_us']:.1f} | {r['write_us']:.1f} |")


if __name__ == "__main__":
    main()
