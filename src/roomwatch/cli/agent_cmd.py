"""``roomwatch agent``: run a room agent (or check its sensors, or calibrate its camera)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from roomwatch.cli.configs import load, with_broker
from roomwatch.cli.options import BROKER_OPTION, config_option
from roomwatch.cli.signals import wait_for_stop

log = logging.getLogger("roomwatch")


@click.command()
@config_option("Agent config (YAML); without it, the defaults.")
@BROKER_OPTION
@click.option(
    "--mock",
    is_flag=True,
    help="Mock pins instead of the Pi's GPIO (laptop, CI); drive them with lines on stdin "
    "such as 'motion on', 'door_lock off', 'button'.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Override state_dir (where the outbox lives).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Read every sensor once, print its reading or fault, and exit (1 on any fault).",
)
@click.option(
    "--calibrate-camera",
    is_flag=True,
    help="With the room EMPTY and lit: watch it for 10 s, write the camera's reference "
    "(a grid of numbers, no image; docs/camera.md) to the state directory, and exit.",
)
def agent(
    config_file: Path | None,
    broker: str | None,
    mock: bool,
    state_dir: Path | None,
    check: bool,
    calibrate_camera: bool,
) -> None:
    """Run a room agent."""
    from roomwatch.firmware_config import AgentConfig

    config = load(config_file, AgentConfig)
    if check:
        from roomwatch.cli.check import check_sensors

        sys.exit(check_sensors(config, mock))
    config = config.model_copy(update={"mqtt": with_broker(config.mqtt, broker)})
    if state_dir is None and "state_dir" not in config.model_fields_set:
        state_dir = _writable_state_dir(config)
    if state_dir is not None:
        config = config.model_copy(update={"state_dir": state_dir})
    if calibrate_camera:
        _calibrate_camera(config, mock)
        return
    _run_agent(config, mock)


def _run_agent(config: Any, mock: bool) -> None:
    from roomwatch.core.clock import WallClock
    from roomwatch.edge_agent.service import AgentService
    from roomwatch.hardware.gpio import mock_factory

    environment = None
    if mock:
        from roomwatch.hardware.mock_environment import MockEnvironment

        # Chips that stray like real ones: a day on --mock is never called stuck at hour 4.
        environment = MockEnvironment(config.sensors, noise_seed=f"{config.site}/{config.room}")
    try:
        service = AgentService(
            config, WallClock(), mock_factory() if mock else None, environment=environment
        )
    except Exception as exc:  # noqa: BLE001 - GPIO and disk problems, in the operator's words
        raise click.ClickException(
            f"cannot start the agent: {exc}"
            + ("" if mock else " (on a machine without GPIO, add --mock)")
        ) from None
    service.start()
    if mock:
        from roomwatch.cli import mock_console

        mock_console.start(service.devices, environment)
    try:
        wait_for_stop(service.stop_event, None)
    finally:
        service.stop()


def _calibrate_camera(config: Any, mock: bool) -> None:
    from roomwatch.hardware.camera.build import calibrate, mock_scene

    camera = config.sensors.camera
    if camera is None:
        raise click.ClickException("no camera is configured (sensors.camera)")
    extra: dict[str, Any] = {}
    if mock:  # the synthetic empty room, on a clock of its own: no real waiting
        ticks = [0.0]
        extra = {
            "scene": mock_scene(camera),
            "monotonic": lambda: ticks[0],
            "sleep": lambda s: ticks.__setitem__(0, ticks[0] + s),
        }
    click.echo("Calibrating the camera: keep the room empty and the lights on for 10 s ...")
    try:
        path, reference = calibrate(camera, config.state_dir, **extra)
    except ValueError as exc:
        raise click.ClickException(f"camera calibration failed: {exc}") from None
    click.echo(
        f"Wrote {path}: {reference.luminance.size} cells x 2 numbers from "
        f"{reference.frames} frames (no image is kept)."
    )


def _writable_state_dir(config: Any) -> Path | None:
    """The default state_dir, or (for a user who cannot write there) one in their home."""
    default: Path = config.state_dir
    try:
        default.mkdir(parents=True, exist_ok=True)
        probe = default / ".write-test"
        probe.touch()
        probe.unlink()
        return None
    except OSError:
        import platformdirs

        fallback = Path(platformdirs.user_state_dir("roomwatch")) / f"{config.site}-{config.room}"
        log.warning("cannot write to %s; keeping the agent's state in %s", default, fallback)
        return fallback
