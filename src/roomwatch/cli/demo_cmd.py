"""``roomwatch demo``: the command (the demo itself is in :mod:`roomwatch.cli.demo`)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import click

from roomwatch.cli.options import DURATION_OPTION
from roomwatch.cli.signals import stop_on_signals


@click.command()
@click.option("--port", default=1883, show_default=True, help="Port of the embedded broker.")
@click.option(
    "--http-port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the collector's web pages (0: off).",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 1000),
    help="How much faster than real time the rooms live (60: a minute a second).",
)
@DURATION_OPTION
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the demo keeps its database (default: the user's data directory).",
)
def demo(
    port: int, http_port: int, speed: float, duration: float | None, data_dir: Path | None
) -> None:
    """Try Roomwatch with nothing installed: four simulated rooms living through a day.

    The real programs: an embedded broker, the collector on SQLite (and its web
    pages), and four agents on mock pins, driven through calm episodes, a lock
    event, a monitoring lapse, an overtime, a hot room and an agent going offline.
    """
    from roomwatch.cli.demo import run_demo
    from roomwatch.simulation.tap import SimulationError

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    stop = threading.Event()
    stop_on_signals(stop)
    from roomwatch.transport.ports import PortInUseError

    try:
        run_demo(port, http_port or None, speed, duration, data_dir, stop)
    except PortInUseError as exc:
        raise click.ClickException(f"cannot start the demo: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot start the demo on port {port}: {exc}") from None
    except SimulationError as exc:
        raise click.ClickException(f"the demo stopped: {exc}") from None
