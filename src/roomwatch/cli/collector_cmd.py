"""``roomwatch collector``: run the collector, its compliance jobs and the staff web app."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import click

from roomwatch.cli.configs import load, with_broker
from roomwatch.cli.options import BROKER_OPTION, DURATION_OPTION, config_option, db_option
from roomwatch.cli.signals import wait_for_stop

log = logging.getLogger("roomwatch")


@click.command()
@config_option("Collector config (YAML); without it, the defaults.")
@BROKER_OPTION
@db_option("Database URL, e.g. sqlite:///collector.db.")
@click.option("--embedded-broker", is_flag=True, help="Run an MQTT broker in this process (demo).")
@DURATION_OPTION
@click.option("--web-port", type=click.IntRange(0, 65535), help="Web app port (0: any free port).")
@click.option("--no-web", is_flag=True, help="Do not serve the web app.")
def collector(
    config_file: Path | None,
    broker: str | None,
    database_url: str | None,
    embedded_broker: bool,
    duration: float | None,
    web_port: int | None,
    no_web: bool,
) -> None:
    """Run the collector (and the staff web app beside it)."""
    from roomwatch.collector.config import CollectorConfig

    config = load(config_file, CollectorConfig)
    config = config.model_copy(update={"mqtt": with_broker(config.mqtt, broker)})
    if database_url is not None:
        config = config.model_copy(update={"database_url": database_url})
    web = config.web
    if web_port is not None:
        web = web.model_copy(update={"port": web_port})
    if no_web:
        web = web.model_copy(update={"enabled": False})
    config = config.model_copy(update={"web": web})
    _run_collector(config, embedded_broker, duration)


def _check_ports(config: Any, embedded_broker: bool) -> None:
    """Every port the collector will listen on, before it starts: one line for a taken one."""
    from roomwatch.transport.ports import PortInUseError, check_free

    wanted = []
    if embedded_broker:
        wanted.append(
            (config.mqtt.host, config.mqtt.port, "the embedded MQTT broker", "set mqtt.port")
        )
    if config.http_port is not None:
        wanted.append(
            (
                config.http_host,
                config.http_port,
                "the collector's /healthz and /metrics",
                "set http_port in the collector config (null turns them off)",
            )
        )
    if config.web.enabled:
        wanted.append(
            (
                config.web.host,
                config.web.port,
                "the staff web app",
                "set web.port in the collector config, or --web-port, or --no-web",
            )
        )
    for host, port, what, fix in wanted:
        try:
            check_free(host, port, what, f"stop the program that uses it, or {fix}")
        except PortInUseError as exc:
            raise click.ClickException(f"cannot start the collector: {exc}") from None


def _run_collector(config: Any, embedded_broker: bool, duration: float | None) -> None:
    from roomwatch.collector.database import DatabaseUrlError
    from roomwatch.collector.service import Collector
    from roomwatch.compliance.jobs import ComplianceJobs
    from roomwatch.core.clock import WallClock
    from roomwatch.transport.embedded_broker import EmbeddedBroker

    stop = threading.Event()
    _check_ports(config, embedded_broker)
    broker = EmbeddedBroker(config.mqtt.host, config.mqtt.port) if embedded_broker else None
    if broker is not None:
        try:
            broker.start()
        except OSError as exc:
            raise click.ClickException(
                f"cannot start the embedded broker on port {config.mqtt.port}: {exc}"
            ) from None
    try:
        service = Collector(config, WallClock())
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None
    compliance = ComplianceJobs(service, config)  # deadline alerts, reports, retention
    service.start()
    compliance.start()
    web = start_web(service)
    try:
        wait_for_stop(stop, duration)
    finally:
        if web is not None:
            web.stop()
        compliance.stop()
        service.stop()
        if broker is not None:
            broker.stop()
        log.info(
            "stopped: %d received, %d stored, %d invalid, %d alerts raised",
            service.counters.received,
            service.counters.stored,
            service.counters.invalid,
            service.counters.alerts,
        )


def start_web(service: Any) -> Any:
    """The web app beside a started collector (None when turned off or its port is taken:
    the alerts on MQTT and the notification channels go on regardless)."""
    settings = service.config.web
    if not settings.enabled:
        return None
    from roomwatch.web.app import WebServer

    web = WebServer(service, settings)
    try:
        web.start()
    except OSError as exc:
        log.error(
            "cannot serve the web app on %s:%s: %s (set web.port in the collector config)",
            settings.host,
            settings.port,
            exc,
        )
        return None
    return web
