"""GPIO inputs and outputs: contacts, PIR, buttons, the permit relay, sounder, LED.

Inputs use gpiozero's ``DigitalInputDevice`` rather than ``MotionSensor``: the
latter smooths through a sampling queue thread, which delays the edge the
interlock must answer at once; the room state machine does its own holding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gpiozero import DigitalInputDevice, DigitalOutputDevice, Factory
from gpiozero.pins.mock import MockFactory

from roomwatch.firmware_config.schema import GpioInput, GpioOutput

log = logging.getLogger(__name__)

ChangeCallback = Callable[[bool], None]


def mock_factory() -> Factory:
    """A pin factory of stateful fake pins, for a laptop, CI and the simulator."""
    return MockFactory()


class BinaryInput:
    """One input whose meaning is active/inactive, reporting every change."""

    def __init__(self, name: str, config: GpioInput, pin_factory: Factory | None = None) -> None:
        self.name = name
        self._device = DigitalInputDevice(
            config.pin,
            pull_up=config.pull_up,
            active_state=config.active_high,
            bounce_time=config.bounce_s,
            pin_factory=pin_factory,
        )
        # A pull-up means the contact pulls the line low when active, and vice versa.
        self.active_high = (
            (not config.pull_up) if config.pull_up is not None else bool(config.active_high)
        )
        self._callback: ChangeCallback | None = None
        self._device.when_activated = lambda: self._changed(True)
        self._device.when_deactivated = lambda: self._changed(False)

    @property
    def active(self) -> bool:
        return bool(self._device.is_active)

    def on_change(self, callback: ChangeCallback) -> None:
        self._callback = callback

    def _changed(self, active: bool) -> None:
        # Runs on gpiozero's edge thread: an exception here would silence the input.
        callback = self._callback
        if callback is None:
            return
        try:
            callback(active)
        except Exception:
            log.exception("handler for input %s failed", self.name)

    @property
    def device(self) -> DigitalInputDevice:
        return self._device

    def close(self) -> None:
        self._device.close()


class BinaryOutput:
    """One output: on means acting (permit granted, sounder on, LED lit)."""

    def __init__(self, name: str, config: GpioOutput, pin_factory: Factory | None = None) -> None:
        self.name = name
        self._device = DigitalOutputDevice(
            config.pin, active_high=config.active_high, initial_value=False, pin_factory=pin_factory
        )

    def set(self, on: bool) -> None:
        if on:
            self._device.on()
        else:
            self._device.off()

    def blink(self, on_s: float, off_s: float) -> None:
        """Repeat on for ``on_s``, off for ``off_s``, in gpiozero's background thread."""
        self._device.blink(on_time=on_s, off_time=off_s, background=True)

    @property
    def is_on(self) -> bool:
        return bool(self._device.is_active)

    def close(self) -> None:
        self._device.off()
        self._device.close()


class WatchdogFeed(BinaryOutput):
    """The heartbeat line of the permit relay's hardware watchdog.

    The relay that lets the electrified lock hold is energised only while the
    permit line is active *and* the watchdog (a retriggerable monostable or a
    charge-pump driver) keeps seeing edges here. The agent toggles this line
    on every tick of its loop while the permit is granted: a hung agent stops
    toggling and the relay drops with no software involved. Withdrawing the
    permit is the permit line's job, and it is immediate.
    """

    def __init__(self, name: str, config: GpioOutput, pin_factory: Factory | None = None) -> None:
        super().__init__(name, config, pin_factory)
        self.feeds = 0

    def feed(self) -> None:
        """One heartbeat edge."""
        self._device.toggle()
        self.feeds += 1


def drive(device: BinaryInput, active: bool) -> None:
    """Drive a mock input's pin to the level that means ``active`` (tests, simulator)."""
    pin = device.device.pin
    high = active == device.active_high
    if high:
        pin.drive_high()
    else:
        pin.drive_low()
