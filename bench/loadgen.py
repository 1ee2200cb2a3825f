"""A load generator in its own process: valid wire-v1 telemetry from many simulated rooms,
published at QoS 1 to Mosquitto over a raw MQTT 3.1.1 socket.

Why not paho: on two cores the generators compete with the collector for CPU. A paho publish
costs tens of microseconds of Python; here a message is one f-string and a share of a
``sendall``, so the load measures the collector, not the generator. The wire format is the
real one (``core/wire.py``, checked by ``test_bench_messages`` in ``bench/loadgen.py --check``):
every message is a complete telemetry body with its own id and per-room sequence number.

Run by the benchmarks as ``python bench/loadgen.py SPEC.json OUT.json``; SPEC holds::

    host, port, site, rooms (list of room ids), rate (messages/s in total; 0 = as fast as the
    broker acknowledges), duration_s, start_ns (perf_counter_ns to begin at, shared clock),
    window (QoS 1 messages in flight), statuses (publish a retained online status per room
    first), trigger_every_s (per room: a locked-door telemetry, then the normal one again),
    seq_start

OUT gets: sent, acked, statuses, first_ns, last_ns, and ``triggers``: [room, ts, publish_ns]
for each alert-triggering message (the alert's ``raised_at`` is that message's ``ts``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLIENT_PREFIX = "bench-load"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str) -> bytes:
    # Protocol MQTT 3.1.1, clean session, keepalive 0 (the load never pauses long).
    body = _string("MQTT") + bytes([4, 0x02, 0, 0]) + _string(client_id)
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, pid: int, payload: bytes, retain: bool = False) -> bytes:
    head = 0x33 if retain else 0x32  # PUBLISH, QoS 1
    length = 2 + len(topic) + 2 + len(payload)
    return (
        bytes([head])
        + _varint(length)
        + len(topic).to_bytes(2, "big")
        + topic
        + pid.to_bytes(2, "big")
        + payload
    )


class _Stamp:
    """The wire's timestamp (RFC 3339, ms, Z) of now, formatted once per millisecond."""

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def now(self) -> str:
        t = time.time()
        ms = int(t * 1000)
        if ms != self._ms:
            self._ms = ms
            stamp = datetime.fromtimestamp(ms / 1000, UTC)
            self._text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        return self._text


def telemetry(
    site: str, room: str, msg_id: str, seq: int, ts: str, *, locked: bool = False
) -> bytes:
    """One telemetry body (about 250 bytes); ``locked``: an occupied room with its door locked."""
    flag = "true" if locked else "false"
    return (
        f'{{"v":1,"id":"{msg_id}","seq":{seq},"ts":"{ts}","site":"{site}","room":"{room}",'
        f'"temperature_c":21.5,"lux":320.0,"co2_ppm":640.0,"occupied":{flag},'
        f'"door_closed":{flag},"door_locked":{flag},"staff_present":{flag},'
        f'"lock_permit":true,"episode_id":null}}'
    ).encode()


def status(site: str, room: str, msg_id: str, ts: str) -> bytes:
    return (
        f'{{"v":1,"id":"{msg_id}","seq":null,"ts":"{ts}","site":"{site}","room":"{room}",'
        f'"state":"online","agent_version":"bench","config_digest":"bench",'
        f'"profile":"default","acked_seq":-1}}'
    ).encode()


class Publisher:
    """A raw MQTT connection publishing QoS 1 with at most ``window`` messages unacknowledged."""

    def __init__(self, host: str, port: int, client_id: str, window: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        connack = self._read_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the load generator: {connack!r}")
        self.window = threading.Semaphore(window)
        self.acked = 0
        self._pid = 0
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("broker closed the connection")
            data += chunk
        return data

    def _read_acks(self) -> None:
        pending = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                pending += chunk
                whole = len(pending) - len(pending) % 4  # PUBACKs are 4 bytes: 0x40 0x02 pid
                count = whole // 4
                pending = pending[whole:]
                self.acked += count
                for _ in range(count):
                    self.window.release()
        except OSError:
            return

    def next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    def send(self, packets: list[bytes]) -> None:
        for _ in packets:
            self.window.acquire()
        self.sock.sendall(b"".join(packets))

    def drain(self, sent: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acked >= sent

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    site: str = spec["site"]
    rooms: list[str] = spec["rooms"]
    rate: float = spec.get("rate", 0)
    duration: float = spec["duration_s"]
    trigger_every = spec.get("trigger_every_s")
    tag = spec.get("tag", f"g{os.getpid()}")
    topics = [f"roomwatch/v1/{site}/{r}/telemetry".encode() for r in rooms]
    pub = Publisher(spec["host"], spec["port"], f"{CLIENT_PREFIX}-{tag}", spec.get("window", 500))
    stamp = _Stamp()
    statuses = 0
    if spec.get("statuses"):
        for i, room in enumerate(rooms):
            topic = f"roomwatch/v1/{site}/{room}/status".encode()
            body = status(site, room, f"{tag}-s{i}", stamp.now())
            pub.send([publish_packet(topic, pub.next_pid(), body, retain=True)])
            statuses += 1
    seq = [spec.get("seq_start", 0)] * len(rooms)
    # Each room's next trigger, spread over the interval so they do not come all at once.
    n_rooms = len(rooms)
    next_trigger = (
        [trigger_every * (i + 0.5) / n_rooms for i in range(n_rooms)] if trigger_every else None
    )
    locked = [False] * n_rooms
    triggers: list[list[Any]] = []
    start_ns = spec.get("start_ns") or time.perf_counter_ns()
    while time.perf_counter_ns() < start_ns:
        time.sleep(min(0.01, max(0.0, (start_ns - time.perf_counter_ns()) / 1e9)))
    end_ns = start_ns + int(duration * 1e9)
    batch = max(1, int(rate / 500)) if rate else 64  # paced: about 500 sends a second
    sent = 0
    room_i = 0
    first_ns = time.perf_counter_ns()
    while True:
        now_ns = time.perf_counter_ns()
        if now_ns >= end_ns:
            break
        if rate:
            due = int((now_ns - start_ns) / 1e9 * rate) + batch
            if sent >= due:
                time.sleep(min(0.002, (sent - due + 1) / rate))
                continue
        ts = stamp.now()
        packets = []
        mark: list[tuple[str, str]] = []
        elapsed_s = (now_ns - start_ns) / 1e9
        for _ in range(batch):
            i = room_i
            room_i = (room_i + 1) % n_rooms
            lock = False
            if next_trigger is not None:
                if locked[i]:
                    locked[i] = False  # the next message unlocks: the alert resolves
                elif elapsed_s >= next_trigger[i]:
                    lock = locked[i] = True
                    next_trigger[i] += trigger_every
            body = telemetry(
                site, rooms[i], f"{tag}-{sent + len(packets)}", seq[i], ts, locked=lock
            )
            seq[i] += 1
            packets.append(publish_packet(topics[i], pub.next_pid(), body))
            if lock:
                mark.append((rooms[i], ts))
        pub.send(packets)
        at = time.perf_counter_ns()
        triggers.extend([room, ts, at] for room, ts in mark)
        sent += len(packets)
    last_ns = time.perf_counter_ns()
    drained = pub.drain(sent + statuses, timeout=120)
    pub.close()
    return {
        "sent": sent,
        "statuses": statuses,
        "acked": pub.acked,
        "all_acked": drained,
        "first_ns": first_ns,
        "last_ns": last_ns,
        "rate": sent / ((last_ns - first_ns) / 1e9) if last_ns > first_ns else 0.0,
        "triggers": triggers,
        "seq_end": seq,
    }


def check() -> None:
    """Every body this generator writes passes the real wire decoder."""
    from roomwatch.core import wire

    stamp = _Stamp()
    for locked in (False, True):
        body = telemetry("bench", "room-0001", "x-1", 7, stamp.now(), locked=locked)
        result = wire.decode("roomwatch/v1/bench/room-0001/telemetry", body)
        assert isinstance(result, wire.Decoded), result
        print(len(body), "bytes:", body.decode())
    body = status("bench", "room-0001", "x-2", stamp.now())
    result = wire.decode("roomwatch/v1/bench/room-0001/status", body)
    assert isinstance(result, wire.Decoded), result


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        check()
        return
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = run(spec)
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
