"""I2C access: the few smbus2 calls the drivers make, the real bus, and a fake bus.

Which transfers the drivers use, and why (all are ``smbus2.SMBus`` methods):

* Register chips (BME280): ``read_byte_data``, ``write_byte_data`` and
  ``read_i2c_block_data``, i.e. START addr+W reg, repeated START addr+R, n
  bytes, STOP: the chip's register pointer auto-increments.
* One-byte opcodes (BH1750 power on, measurement mode): ``write_byte``.
* Plain reads and 16-bit commands (BH1750 result, every SCD4x transfer):
  ``i2c_rdwr`` with one ``i2c_msg`` each, through :func:`read_bytes` and
  :func:`write_bytes`. The SMBus block calls always send a register byte
  before reading, which the BH1750 would take as an opcode, and the SCD4x
  needs its two command bytes in a transfer of their own, a pause of 1 ms,
  then a plain read of 3 or 9 bytes.

Nothing here imports smbus2 until a real bus is opened or a raw transfer is
made, so the module loads on a laptop without it. :class:`FakeI2cBus` hosts
fake chips by address (like gpiozero's ``MockFactory`` hosts mock pins): a test
sets a fake's attributes (``fake.temperature_c = 40``, ``fake.fail = True``)
and the driver under test sees what real wiring would show, down to the
``OSError`` errno 121 of a chip that does not acknowledge.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from roomwatch.hardware.faults import NO_ACK_ERRNO

if TYPE_CHECKING:
    from smbus2 import i2c_msg

#: ``I2C_M_RD`` from linux/i2c.h: the message is a read.
I2C_M_RD = 0x0001
#: The SMBus block limit smbus2 enforces on ``read_i2c_block_data``.
I2C_BLOCK_MAX = 32


class I2cBus(Protocol):
    """The subset of ``smbus2.SMBus`` the drivers use."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_byte(self, i2c_addr: int, value: int) -> None: ...

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None: ...

    def close(self) -> None: ...


def open_bus(number: int) -> I2cBus:
    """Open ``/dev/i2c-<number>``; raises ImportError or OSError when it cannot."""
    from smbus2 import SMBus

    bus: I2cBus = SMBus(number)
    return bus


def write_bytes(bus: I2cBus, address: int, data: bytes) -> None:
    """One write transfer of ``data`` with no register byte in front (START … STOP)."""
    from smbus2 import i2c_msg

    bus.i2c_rdwr(i2c_msg.write(address, data))


def read_bytes(bus: I2cBus, address: int, length: int) -> bytes:
    """One plain read transfer of ``length`` bytes (START addr+R … STOP)."""
    from smbus2 import i2c_msg

    message = i2c_msg.read(address, length)
    bus.i2c_rdwr(message)
    return ctypes.string_at(message.buf, message.len)


def no_ack() -> OSError:
    """The error Linux raises when no chip acknowledges its address."""
    return OSError(NO_ACK_ERRNO, os.strerror(NO_ACK_ERRNO))


class FakeI2cDevice:
    """A chip on a :class:`FakeI2cBus`, seen as raw transfers like on the wire.

    ``write`` gets the bytes of one write transfer, ``read`` returns the bytes of
    one read transfer. Set ``fail`` to make the chip stop acknowledging.
    """

    fail: bool = False

    def write(self, data: bytes) -> None:
        raise no_ack()

    def read(self, length: int) -> bytes:
        raise no_ack()


Device = TypeVar("Device", bound=FakeI2cDevice)


class FakeI2cBus:
    """An I2C bus of fake chips, for tests, the simulator and ``--mock``."""

    def __init__(self, devices: dict[int, FakeI2cDevice] | None = None) -> None:
        self.devices: dict[int, FakeI2cDevice] = {} if devices is None else devices
        self.closed = False

    def add(self, address: int, device: Device) -> Device:
        """Wire ``device`` at ``address``; returns it so a test can keep a handle."""
        self.devices[address] = device
        return device

    def remove(self, address: int) -> None:
        """Unplug the chip at ``address``."""
        self.devices.pop(address, None)

    def share(self) -> FakeI2cBus:
        """Another handle on the same wires, like a second ``open()`` of /dev/i2c-N."""
        return FakeI2cBus(self.devices)

    def _device(self, address: int) -> FakeI2cDevice:
        if self.closed:
            raise OSError(errno.EBADF, "I2C bus is closed")
        device = self.devices.get(address)
        if device is None or device.fail:
            raise no_ack()
        return device

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        device = self._device(i2c_addr)
        device.write(bytes([register]))
        return device.read(1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._device(i2c_addr).write(bytes([register, value]))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        if length > I2C_BLOCK_MAX:
            raise ValueError(f"Desired block length over {I2C_BLOCK_MAX} bytes")
        device = self._device(i2c_addr)
        device.write(bytes([register]))
        return list(device.read(length))

    def write_byte(self, i2c_addr: int, value: int) -> None:
        self._device(i2c_addr).write(bytes([value]))

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        for message in i2c_msgs:
            device = self._device(message.addr)
            if message.flags & I2C_M_RD:
                data = device.read(message.len)
                ctypes.memmove(message.buf, data, min(len(data), message.len))
            else:
                device.write(ctypes.string_at(message.buf, message.len))

    def close(self) -> None:
        self.closed = True


class I2cChip:
    """What every I2C driver holds: its bus and address, a name, and a label for faults."""

    kind = "i2c"

    def __init__(
        self,
        bus: I2cBus,
        address: int,
        *,
        name: str,
        bus_number: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._bus = bus
        self._address = address
        self._sleep = sleep
        on = f" on i2c-{bus_number}" if bus_number is not None else ""
        self.label = f"{self.kind} 0x{address:02x}{on}"
