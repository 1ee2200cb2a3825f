"""``roomwatch agent --check``: every sensor with its reading or its fault, for installers."""

from __future__ import annotations

import click

from roomwatch.edge_agent.devices import build_devices
from roomwatch.firmware_config.schema import AgentConfig
from roomwatch.hardware.gpio import mock_factory
from roomwatch.hardware.mock_environment import MockEnvironment
from roomwatch.hardware.readings import PresenceSensor, SampledSensor
from roomwatch.hardware.sensors import build_presence, build_sampled_sensors


def check_sensors(config: AgentConfig, mock: bool) -> int:
    """Print one line per device; return the exit status (0 all well, 1 a fault)."""
    factory = mock_factory() if mock else None
    try:
        devices = build_devices(config, factory)
    except Exception as exc:  # noqa: BLE001 - say what failed, in the installer's words
        click.echo(f"GPIO: cannot open the pins: {exc}", err=True)
        return 1
    sensors: dict[str, SampledSensor]
    presence: PresenceSensor | None
    if mock:
        environment = MockEnvironment(config.sensors)
        sensors, presence = environment.sampled_sensors(factory), environment.presence()
    else:
        sensors = build_sampled_sensors(config.sensors, factory)
        presence = build_presence(config.sensors)
    faults = 0
    click.echo(f"{config.site}/{config.room} (profile {config.profile})")
    try:
        for pin_input, device in devices.inputs.items():
            state = "ACTIVE" if device.active else "inactive"
            click.echo(f"  {pin_input.value:<14} ok     {state}")
        if devices.staff_button is not None:
            state = "PRESSED" if devices.staff_button.active else "released"
            click.echo(f"  {'staff_button':<14} ok     {state}")
        for name, sensor in sensors.items():
            reading = sensor.read()
            if reading.fault is None:
                click.echo(f"  {name:<14} ok     {reading.value:g}")
            else:
                faults += 1
                click.echo(f"  {name:<14} FAULT  {reading.fault}")
        if presence is not None:
            p = presence.read()
            if p.fault is None:
                seen = (
                    "unknown (listening)"
                    if p.present is None
                    else ("someone" if p.present else "no one")
                )
                click.echo(f"  {'presence':<14} ok     {seen}")
            else:
                faults += 1
                click.echo(f"  {'presence':<14} FAULT  {p.fault}")
        for output in (devices.lock_permit, devices.watchdog_feed, devices.sounder, devices.led):
            if output is not None:
                click.echo(f"  {output.name:<14} ok     output, held off")
    finally:
        devices.close()
        for s in [*sensors.values(), presence]:
            if s is not None:
                s.close()
    click.echo("all sensors answer" if not faults else f"{faults} sensor fault(s)")
    return 1 if faults else 0
