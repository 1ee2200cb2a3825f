"""Build the room's GPIO devices from the configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpiozero import Factory

from roomwatch.core.room import Input
from roomwatch.firmware_config.schema import AgentConfig, GpioInput
from roomwatch.hardware.gpio import BinaryInput, BinaryOutput, WatchdogFeed

#: Which configured sensor feeds which state-machine input.
SENSOR_INPUTS: dict[str, Input] = {
    "door_lock": Input.DOOR_LOCK,
    "door_closed": Input.DOOR_CLOSED,
    "motion": Input.MOTION,
    "staff": Input.STAFF,
}


@dataclass
class RoomDevices:
    inputs: dict[Input, BinaryInput] = field(default_factory=dict)
    staff_button: BinaryInput | None = None
    lock_permit: BinaryOutput | None = None
    watchdog_feed: WatchdogFeed | None = None
    sounder: BinaryOutput | None = None
    led: BinaryOutput | None = None

    @property
    def fitted(self) -> frozenset[Input]:
        return frozenset(self.inputs)

    def close(self) -> None:
        # Outputs first and off: a closing agent withdraws the permit.
        for output in (self.lock_permit, self.watchdog_feed, self.sounder, self.led):
            if output is not None:
                output.close()
        for device in (*self.inputs.values(), self.staff_button):
            if device is not None:
                device.close()


def build_devices(config: AgentConfig, pin_factory: Factory | None) -> RoomDevices:
    """Open every configured GPIO device; the permit starts withdrawn."""
    devices = RoomDevices()
    sensors = config.sensors
    for name, target in SENSOR_INPUTS.items():
        sensor = getattr(sensors, name)
        if isinstance(sensor, GpioInput):
            devices.inputs[target] = BinaryInput(name, sensor, pin_factory)
    if sensors.staff_button is not None:
        devices.staff_button = BinaryInput("staff_button", sensors.staff_button, pin_factory)
    outputs = config.outputs
    if outputs.lock_permit is not None:
        devices.lock_permit = BinaryOutput("lock_permit", outputs.lock_permit, pin_factory)
    if outputs.watchdog_feed is not None:
        devices.watchdog_feed = WatchdogFeed("watchdog_feed", outputs.watchdog_feed, pin_factory)
    if outputs.sounder is not None:
        devices.sounder = BinaryOutput("sounder", outputs.sounder, pin_factory)
    if outputs.led is not None:
        devices.led = BinaryOutput("led", outputs.led, pin_factory)
    return devices
