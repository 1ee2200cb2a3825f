"""HLK-LD2410 24 GHz mmWave presence over UART (256000 baud 8N1 by default).

The module reports on its own, about ten times a second. A report frame, from
the vendor's serial protocol document::

    F4 F3 F2 F1 | length (2, LE) | type | AA | target data | 55 | 00 | F8 F7 F6 F5

type 0x02 is a basic report (length 13), 0x01 an engineering report (the
basic fields, then the number of moving and stationary gates and one energy
per gate, sometimes more). The target data starts with the target state
(0 none, 1 moving, 2 stationary, 3 both), then moving distance (cm, 2 bytes),
moving energy (1), stationary distance (2), stationary energy (1) and
detection distance (2). There is no checksum, so a frame counts only when its
length, markers and footer all agree; anything else is skipped a byte at a
time, so a real frame after garbage is never lost. Command acknowledgements
(FD FC FB FA … 04 03 02 01) are skipped as garbage: this driver sends none.

Presence is unknown (None) with a fault when no valid frame has arrived for
more than ``stale_after_s`` (2 s) or the port cannot be opened or read; during
the first 2 s after opening it is unknown without a fault.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from roomwatch.hardware.readings import PresenceReading

log = logging.getLogger(__name__)

HEADER = b"\xf4\xf3\xf2\xf1"
FOOTER = b"\xf8\xf7\xf6\xf5"
ENGINEERING = 0x01
BASIC = 0x02
HEAD = 0xAA
TAIL = 0x55
CHECK = 0x00
BASIC_LENGTH = 13
#: An engineering report with 8+8 gates and extras is about 35-40 bytes.
MAX_LENGTH = 64
MAX_GATE = 8
STALE_AFTER_S = 2.0
REOPEN_EVERY_S = 5.0


class TargetState(IntEnum):
    NONE = 0
    MOVING = 1
    STATIONARY = 2
    BOTH = 3


@dataclass(frozen=True, slots=True)
class Ld2410Frame:
    """One report."""

    state: TargetState
    moving_distance_cm: int
    moving_energy: int
    stationary_distance_cm: int
    stationary_energy: int
    detection_distance_cm: int
    engineering: bool = False

    @property
    def present(self) -> bool:
        return self.state is not TargetState.NONE


def decode_payload(payload: bytes) -> Ld2410Frame | None:
    """The frame inside a header/length/footer envelope, or None if it is not one."""
    if len(payload) < BASIC_LENGTH or payload[1] != HEAD:
        return None
    if payload[-2] != TAIL or payload[-1] != CHECK or payload[2] > TargetState.BOTH:
        return None
    kind = payload[0]
    if kind == BASIC:
        if len(payload) != BASIC_LENGTH:
            return None
    elif kind == ENGINEERING:
        if len(payload) < BASIC_LENGTH + 2:
            return None
        moving_gates, still_gates = payload[11], payload[12]
        if moving_gates > MAX_GATE or still_gates > MAX_GATE:
            return None
        if len(payload) < BASIC_LENGTH + 2 + moving_gates + 1 + still_gates + 1:
            return None
    else:
        return None
    return Ld2410Frame(
        state=TargetState(payload[2]),
        moving_distance_cm=int.from_bytes(payload[3:5], "little"),
        moving_energy=payload[5],
        stationary_distance_cm=int.from_bytes(payload[6:8], "little"),
        stationary_energy=payload[8],
        detection_distance_cm=int.from_bytes(payload[9:11], "little"),
        engineering=kind == ENGINEERING,
    )


def encode_frame(frame: Ld2410Frame, gates: int = MAX_GATE) -> bytes:
    """The bytes the module sends for ``frame`` (tests, simulator)."""
    body = bytearray([ENGINEERING if frame.engineering else BASIC, HEAD, frame.state])
    body += frame.moving_distance_cm.to_bytes(2, "little") + bytes([frame.moving_energy])
    body += frame.stationary_distance_cm.to_bytes(2, "little") + bytes([frame.stationary_energy])
    body += frame.detection_distance_cm.to_bytes(2, "little")
    if frame.engineering:
        body += bytes([gates, gates]) + bytes(range(gates + 1)) + bytes(range(gates + 1))
    body += bytes([TAIL, CHECK])
    return HEADER + len(body).to_bytes(2, "little") + bytes(body) + FOOTER


def _partial_header(buffer: bytearray) -> int:
    """How many trailing bytes could be the start of a header."""
    for size in range(len(HEADER) - 1, 0, -1):
        if buffer.endswith(HEADER[:size]):
            return size
    return 0


class Ld2410Parser:
    """Byte stream in, frames out; survives garbage, split frames and lost bytes.

    Its buffer never holds more than one frame's worth of bytes.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0  # bytes thrown away as garbage

    def feed(self, data: bytes) -> list[Ld2410Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Ld2410Frame] = []
        while True:
            start = buffer.find(HEADER)
            if start < 0:
                self._skip(len(buffer) - _partial_header(buffer))
                return frames
            self._skip(start)
            if len(buffer) < len(HEADER) + 2:
                return frames
            length = int.from_bytes(buffer[4:6], "little")
            if not BASIC_LENGTH <= length <= MAX_LENGTH:
                self._skip(1)  # a header-looking run inside garbage
                continue
            end = len(HEADER) + 2 + length
            if len(buffer) < end + len(FOOTER):
                return frames
            frame = None
            if buffer[end : end + len(FOOTER)] == FOOTER:
                frame = decode_payload(bytes(buffer[len(HEADER) + 2 : end]))
            if frame is None:
                self._skip(1)
                continue
            frames.append(frame)
            del buffer[: end + len(FOOTER)]

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def _skip(self, count: int) -> None:
        if count > 0:
            del self._buffer[:count]
            self.skipped += count


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the driver uses."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


def open_serial(port: str, baudrate: int) -> SerialPort:
    """Open a serial port without blocking reads; raises ImportError or OSError."""
    import serial

    opened: SerialPort = serial.Serial(port, baudrate, timeout=0)
    return opened


class Ld2410:
    """Presence from an LD2410 on ``port`` (None when it could not be opened).

    With ``reopen``, a port that failed to open, or failed while reading (a USB
    adapter unplugged), is opened again every ``reopen_every_s``.
    """

    def __init__(
        self,
        port: SerialPort | None,
        *,
        port_name: str = "serial",
        name: str = "presence",
        monotonic: Callable[[], float] = time.monotonic,
        stale_after_s: float = STALE_AFTER_S,
        reopen: Callable[[], SerialPort] | None = None,
        reopen_every_s: float = REOPEN_EVERY_S,
        open_error: str | None = None,
    ) -> None:
        self.name = name
        self.label = f"ld2410 {port_name}"
        self._port = port
        self._monotonic = monotonic
        self._stale_after_s = stale_after_s
        self._reopen = reopen
        self._reopen_every_s = reopen_every_s
        self._port_error = open_error or ("port not open" if port is None else None)
        now = monotonic()
        self._next_open = now + reopen_every_s
        self._reset_stream(now)

    def _reset_stream(self, now: float) -> None:
        self._parser = Ld2410Parser()
        self._listening_since = now
        self._last_frame: Ld2410Frame | None = None
        self._last_frame_at: float | None = None
        self._last_bytes_at: float | None = None

    def _fault(self, cause: str) -> PresenceReading:
        return PresenceReading(self.name, None, f"{self.name} ({self.label}): {cause}")

    def read(self) -> PresenceReading:
        try:
            return self._read(self._monotonic())
        except Exception as exc:  # read() must never raise
            log.exception("%s: unexpected error", self.label)
            return self._fault(f"driver error {type(exc).__name__}: {exc}")

    def _read(self, now: float) -> PresenceReading:
        if self._port is None:
            self._try_reopen(now)
        if self._port is None:
            return self._fault(f"port unavailable: {self._port_error}")
        try:
            waiting = self._port.in_waiting
            data = self._port.read(waiting) if waiting else b""
        except OSError as exc:  # pyserial's SerialException is an OSError
            self._drop_port(f"{exc.strerror or exc}", now)
            return self._fault(f"serial port failed: {self._port_error}")
        if data:
            self._last_bytes_at = now
        frames = self._parser.feed(data)
        if frames:
            self._last_frame, self._last_frame_at = frames[-1], now
        if self._last_frame is None or self._last_frame_at is None:
            silent = now - self._listening_since
            if silent <= self._stale_after_s:
                return PresenceReading(self.name, None)  # starting up
            return self._fault(self._why_silent(now, silent))
        age = now - self._last_frame_at
        if age > self._stale_after_s:
            return self._fault(self._why_silent(now, age))
        return PresenceReading(self.name, self._last_frame.present)

    def _why_silent(self, now: float, seconds: float) -> str:
        if self._last_bytes_at is None or now - self._last_bytes_at > self._stale_after_s:
            return f"no data from the module for {seconds:.1f} s (check wiring and power)"
        return f"no valid frame for {seconds:.1f} s though bytes arrive (check the baud rate)"

    def _drop_port(self, error: str, now: float) -> None:
        port, self._port = self._port, None
        self._port_error = error
        self._next_open = now  # try again at the next read
        if port is not None:
            with contextlib.suppress(OSError):  # it is already gone
                port.close()

    def _try_reopen(self, now: float) -> None:
        if self._reopen is None or now < self._next_open:
            return
        self._next_open = now + self._reopen_every_s
        try:
            self._port = self._reopen()
        except Exception as exc:  # noqa: BLE001 - ImportError, OSError, ValueError…
            self._port_error = f"{exc}"
            return
        self._port_error = None
        self._reset_stream(now)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError):  # it may already be gone
                port.close()


class FakeSerial:
    """A serial port a test writes into: ``feed(bytes)``; ``fail`` makes reads raise."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fail = False
        self.closed = False

    def feed(self, data: bytes) -> None:
        self.buffer += data

    @property
    def in_waiting(self) -> int:
        self._check()
        return len(self.buffer)

    def read(self, size: int = 1) -> bytes:
        self._check()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _check(self) -> None:
        if self.closed:
            raise OSError(9, "Attempting to use a port that is not open")
        if self.fail:
            raise OSError(5, "Input/output error")

    def close(self) -> None:
        self.closed = True
