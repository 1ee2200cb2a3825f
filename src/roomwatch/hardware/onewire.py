"""DS18B20 temperature over 1-wire, read through the kernel's w1_therm sysfs files.

Reading ``<base>/28-xxxxxxxxxxxx/w1_slave`` makes the kernel run a conversion
(about 750 ms) and gives two lines::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

The first line ends in YES when the scratchpad's CRC is good; ``t`` is in
millidegrees. Datasheet facts used as checks: 85 °C is the scratchpad's
power-on value (a conversion that never ran: weak power, parasite mode gone
wrong); the sensor measures -55..125 °C; a real scratchpad is never all zero
(its configuration byte always has its low five bits set), so nine zero bytes
mean nobody answered even though their CRC happens to be valid.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from roomwatch.hardware.faults import RangeCheck, describe_bug, fault
from roomwatch.hardware.readings import Reading

log = logging.getLogger(__name__)

W1_DEVICES = Path("/sys/bus/w1/devices")
FAMILY_PREFIX = "28-"
POWER_ON_MILLIDEGREES = 85000
MEASURING_RANGE = RangeCheck(-55.0, 125.0, " °C")
_TEMPERATURE = re.compile(r"\bt=(-?\d+)\s*$")


class Ds18b20:
    """One DS18B20; ``device_id`` None means the only ``28-*`` device under ``base``."""

    def __init__(
        self,
        device_id: str | None = None,
        *,
        base: Path = W1_DEVICES,
        name: str = "temperature",
    ) -> None:
        self.name = name
        self.device_id = device_id
        self._base = base
        self._found: str | None = device_id

    @property
    def label(self) -> str:
        return f"ds18b20 {self._found}" if self._found else "ds18b20"

    def read(self) -> Reading:
        try:
            located = self._locate()
            if located is None:
                return self._fault(self._why_missing())
            return self._read(located)
        except Exception as exc:  # read() must never raise
            log.exception("%s: unexpected error", self.label)
            return self._fault(describe_bug(exc))

    def _fault(self, cause: str) -> Reading:
        return fault(self.name, self.label, cause)

    def _candidates(self) -> list[str]:
        try:
            return sorted(p.name for p in self._base.glob(FAMILY_PREFIX + "*"))
        except OSError:
            return []

    def _locate(self) -> Path | None:
        if self.device_id is not None:
            folder = self._base / self.device_id
            return folder / "w1_slave" if folder.is_dir() else None
        found = self._candidates()
        if len(found) != 1:
            return None
        self._found = found[0]
        return self._base / found[0] / "w1_slave"

    def _why_missing(self) -> str:
        if self.device_id is not None:
            return f"not found in {self._base} (check wiring, pull-up and the w1-gpio overlay)"
        found = self._candidates()
        if not found:
            return f"no DS18B20 found in {self._base} (is the w1-gpio overlay enabled?)"
        self._found = None
        return f"{len(found)} DS18B20 found ({', '.join(found)}): set device_id to choose one"

    def _read(self, path: Path) -> Reading:
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            return self._fault(f"cannot read {path.name}: {exc.strerror or exc}")
        lines = text.strip().splitlines()
        if len(lines) < 2 or ":" not in lines[0]:
            return self._fault(f"unexpected w1_slave contents {text[:60]!r}")
        status = lines[0].split()[-1]
        if status == "NO":
            return self._fault("CRC check failed")
        if status != "YES":
            return self._fault(f"unexpected CRC status {lines[0][-20:]!r}")
        scratchpad = lines[0].split(":", 1)[0].split()
        if scratchpad and all(byte == "00" for byte in scratchpad):
            return self._fault("all-zero scratchpad: sensor not answering (check the data line)")
        match = _TEMPERATURE.search(lines[1])
        if match is None:
            return self._fault(f"no temperature in w1_slave line {lines[1][-40:]!r}")
        millidegrees = int(match.group(1))
        if millidegrees == POWER_ON_MILLIDEGREES:
            return self._fault("reads 85 °C, the power-on value: conversion did not run")
        celsius = millidegrees / 1000
        problem = MEASURING_RANGE.problem(celsius)
        if problem is not None:
            return self._fault(problem)
        return Reading(self.name, celsius)

    def close(self) -> None:
        """Nothing to release: each read opens and closes the sysfs file."""


def dallas_crc8(data: bytes) -> int:
    """The 1-wire CRC (x^8 + x^5 + x^4 + 1, LSB first) the kernel checks."""
    crc = 0
    for byte in data:
        for bit in range(8):
            mix = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
    return crc


class FakeDs18b20:
    """A DS18B20 as sysfs shows it; every attribute change rewrites its w1_slave file.

    ``temperature_c`` (12-bit, 1/16 °C steps), ``crc_ok``, ``power_on_value``
    (reads 85 °C), ``answering`` (False: all-zero scratchpad), ``readable``
    (False: reading the file fails) and ``present`` (False: the folder is gone).
    """

    def __init__(self, base: Path, device_id: str, temperature_c: float = 21.5) -> None:
        self._ready = False
        self.base = base
        self.device_id = device_id
        self.temperature_c = temperature_c
        self.crc_ok = True
        self.power_on_value = False
        self.answering = True
        self.readable = True
        self.present = True
        self._ready = True
        self._render()

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name != "_ready" and getattr(self, "_ready", False):
            self._render()

    def _render(self) -> None:
        folder = self.base / self.device_id
        path = folder / "w1_slave"
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()
        if not self.present:
            if folder.exists():
                folder.rmdir()
            return
        folder.mkdir(parents=True, exist_ok=True)
        if not self.readable:
            path.mkdir()  # reading a folder raises IsADirectoryError, an OSError
            return
        raw = 0x0550 if self.power_on_value else round(self.temperature_c * 16) & 0xFFFF
        pad = bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
        pad += bytes([dallas_crc8(pad)])
        if not self.answering:
            pad = bytes(9)
        if not self.crc_ok:
            pad = pad[:2] + bytes([pad[2] ^ 0x01]) + pad[3:]
        shown = pad[0] | pad[1] << 8
        signed = shown - 0x10000 if shown & 0x8000 else shown
        good = dallas_crc8(pad[:8]) == pad[8]
        hexes = " ".join(f"{b:02x}" for b in pad)
        path.write_text(
            f"{hexes} : crc={pad[8]:02x} {'YES' if good else 'NO'}\n"
            f"{hexes} t={int(signed * 1000 / 16)}\n"
        )
