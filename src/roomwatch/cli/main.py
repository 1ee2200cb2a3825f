"""The ``roomwatch`` command line: composes the programs below it."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click
from pydantic import BaseModel

from roomwatch import __version__
from roomwatch.core.policy import ProfileError, available_profiles, load_profile

log = logging.getLogger("roomwatch")

QUIET_LOGGERS = (
    "amqtt",
    "transitions",
    "alembic",
    "apscheduler",
    "roomwatch.transport.client.paho",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for journald, Loki, Elastic and friends."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _wait_for_stop(stop: threading.Event, duration: float | None) -> None:
    """Block until SIGINT/SIGTERM (or ``duration`` seconds); the one stop event."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    stop.wait(duration)


def _load(path: Path | None, model: type[BaseModel]) -> Any:
    from roomwatch.firmware_config import ConfigError, load_model

    if path is None:
        return model()
    try:
        return load_model(path, model)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _broker(settings: Any, url: str | None) -> Any:
    if url is None:
        return settings
    try:
        return settings.with_broker_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one object per line (structured logs).",
)
@click.version_option(__version__, prog_name="roomwatch")
def main(log_level: str, log_format: str) -> None:
    """Roomwatch: no student locked in, left unwatched, or kept past the limit."""
    _setup_logging(log_level, log_format)


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.command("validate-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--collector", "is_collector", is_flag=True, help="Check a collector config, not an agent's."
)
def validate_config(file: Path, is_collector: bool) -> None:
    """Check a configuration FILE: exit 0 if valid, 1 with each problem if not."""
    from roomwatch.firmware_config import AgentConfig, ConfigError, load_model

    model: type[BaseModel] = AgentConfig
    if is_collector:
        from roomwatch.collector.config import CollectorConfig

        model = CollectorConfig
    try:
        config = load_model(file, model)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{problem}", err=True)
        click.echo(f"{file}: invalid ({len(exc.problems)} problem(s))", err=True)
        sys.exit(1)
    digest = getattr(config, "digest", None)
    click.echo(f"{file}: valid" + (f" ({digest()})" if digest else ""))


@main.group()
def policies() -> None:
    """The policy profiles Roomwatch knows."""


@policies.command("list")
def policies_list() -> None:
    """One line per profile: id, limit, parent notification, jurisdiction."""
    for profile_id in available_profiles():
        p = load_profile(profile_id)
        limit = p.time_limit
        if limit.by_band:
            minutes = "/".join(f"{v:g}" for v in limit.by_band.values()) + " min"
        elif limit.default_min:
            minutes = f"{limit.default_min:g} min"
        else:
            minutes = "plan"
        note = "" if p.seclusion_allowed else "  (seclusion prohibited)"
        click.echo(
            f"{p.id:<22} {minutes:<10} {p.parent_notification.deadline.value:<20} "
            f"{p.jurisdiction}{note}"
        )


@policies.command("show")
@click.argument("profile_id")
def policies_show(profile_id: str) -> None:
    """The fully resolved profile PROFILE_ID, as JSON."""
    try:
        profile = load_profile(profile_id)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(profile.model_dump(mode="json"), indent=2, ensure_ascii=False))


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Agent config (YAML); without it, the defaults.",
)
@click.option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT (overrides the config).")
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
    from roomwatch.core.clock import WallClock
    from roomwatch.edge_agent.service import AgentService
    from roomwatch.firmware_config import AgentConfig
    from roomwatch.hardware.gpio import mock_factory

    config = _load(config_file, AgentConfig)
    if check:
        from roomwatch.cli.check import check_sensors

        sys.exit(check_sensors(config, mock))
    config = config.model_copy(update={"mqtt": _broker(config.mqtt, broker)})
    if state_dir is None and "state_dir" not in config.model_fields_set:
        state_dir = _writable_state_dir(config)
    if state_dir is not None:
        config = config.model_copy(update={"state_dir": state_dir})
    if calibrate_camera:
        _calibrate_camera(config, mock)
        return
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
        _wait_for_stop(service.stop_event, None)
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


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Collector config (YAML); without it, the defaults.",
)
@click.option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT (overrides the config).")
@click.option("--db", "database_url", help="Database URL, e.g. sqlite:///collector.db.")
@click.option("--embedded-broker", is_flag=True, help="Run an MQTT broker in this process (demo).")
@click.option("--duration", type=float, help="Stop after this many seconds (scripted runs).")
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

    config = _load(config_file, CollectorConfig)
    config = config.model_copy(update={"mqtt": _broker(config.mqtt, broker)})
    if database_url is not None:
        config = config.model_copy(update={"database_url": database_url})
    web = config.web
    if web_port is not None:
        web = web.model_copy(update={"port": web_port})
    if no_web:
        web = web.model_copy(update={"enabled": False})
    config = config.model_copy(update={"web": web})
    _run_collector(config, embedded_broker, duration)


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for programs).")
@click.option("--verbose", is_flag=True, help="Show the programs' log lines as they run.")
@click.option(
    "--school-day",
    is_flag=True,
    help="Instead of FILE: generate a school day of ordinary use with injected incidents "
    "(docs/simulation.md) and report, per alert type, true, missed and unexplained alerts.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="With --school-day.")
@click.option(
    "--rooms", type=click.IntRange(1, 20), default=4, show_default=True, help="With --school-day."
)
@click.option(
    "--episodes",
    type=click.IntRange(0, 40),
    default=8,
    show_default=True,
    help="With --school-day: calm episodes per room.",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="ID[:BAND]",
    help="With --school-day: the rooms' policy profiles, in order, e.g. --profile us-ny "
    "--profile us-mi:elementary (default: default, us-ny, us-mi:elementary, us-ma, us-ct).",
)
@click.option(
    "--hours",
    type=click.FloatRange(0.5, 24),
    help="With --school-day: spread the day over this many hours (default: uses a few "
    "minutes apart).",
)
def simulate(
    file: Path | None,
    as_json: bool,
    verbose: bool,
    school_day: bool,
    seed: int,
    rooms: int,
    episodes: int,
    profiles: tuple[str, ...],
    hours: float | None,
) -> None:
    """Run the scenario FILE on the real agent, broker and collector, in virtual time.

    Exit status: 0 when every expectation is met, 1 when one is not, 2 when the
    file is invalid or the simulation could not run. With --school-day: 0 when
    every incident alerted in time and no alert is unexplained, 1 otherwise.
    """
    if school_day == (file is not None):
        raise click.UsageError("give a scenario FILE or --school-day, not both")
    quiet = [] if verbose else [logging.getLogger(n) for n in ("roomwatch", "amqtt", "transitions")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)  # the programs' lines would bury the summary
    try:
        if file is None:
            _simulate_day(seed, rooms, episodes, profiles, hours, as_json)
        else:
            _simulate(file, as_json)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _simulate(file: Path, as_json: bool) -> None:
    from roomwatch.simulation.engine import simulate as run
    from roomwatch.simulation.expect import check
    from roomwatch.simulation.scenario import ConfigError, load_scenario
    from roomwatch.simulation.summary import as_json as json_text
    from roomwatch.simulation.summary import as_text
    from roomwatch.simulation.tap import SimulationError

    try:
        scenario = load_scenario(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        click.echo(f"{file}: invalid scenario ({len(exc.problems)} problem(s))", err=True)
        sys.exit(2)
    try:
        result = run(scenario)
    except SimulationError as exc:
        click.echo(f"{file}: the simulation could not run: {exc}", err=True)
        sys.exit(2)
    outcomes = check(scenario, result)
    click.echo(
        json_text(result, outcomes) if as_json else as_text(scenario, result, outcomes, str(file))
    )
    failed = [o for o in outcomes if not o.met]
    if failed:
        if as_json:
            for o in failed:
                click.echo(str(o), err=True)
        click.echo(f"{file}: {len(failed)} of {len(outcomes)} expectation(s) not met", err=True)
        sys.exit(1)


def _simulate_day(
    seed: int,
    rooms: int,
    episodes: int,
    profiles: tuple[str, ...],
    hours: float | None,
    as_json: bool,
) -> None:
    from roomwatch.core.policy import available_profiles
    from roomwatch.simulation.engine import simulate as run
    from roomwatch.simulation.school_day import ROOM_PROFILES, generate, parse_room_profile
    from roomwatch.simulation.tap import SimulationError
    from roomwatch.simulation.truth import as_json as json_text
    from roomwatch.simulation.truth import as_text, judge_day

    try:
        chosen = [parse_room_profile(p) for p in profiles] or list(ROOM_PROFILES)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc} (elementary or secondary)", param_hint="--profile"
        ) from None
    unknown = sorted({p for p, _ in chosen} - set(available_profiles()))
    if unknown:
        raise click.BadParameter(
            f"unknown policy profile(s) {', '.join(unknown)}; known: "
            + ", ".join(available_profiles()),
            param_hint="--profile",
        )
    day = generate(seed, rooms, episodes, hours, chosen)
    try:
        result = run(day.scenario)
    except SimulationError as exc:
        click.echo(f"school day {seed}: the simulation could not run: {exc}", err=True)
        sys.exit(2)
    truth = judge_day(day, result)
    click.echo(json_text(truth, result) if as_json else as_text(truth))
    if not truth.clean:
        sys.exit(1)


@main.command()
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
@click.option("--duration", type=float, help="Stop after this many seconds (scripted runs).")
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

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    from roomwatch.transport.ports import PortInUseError

    try:
        run_demo(port, http_port or None, speed, duration, data_dir, stop)
    except PortInUseError as exc:
        raise click.ClickException(f"cannot start the demo: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot start the demo on port {port}: {exc}") from None
    except SimulationError as exc:
        raise click.ClickException(f"the demo stopped: {exc}") from None


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
        _wait_for_stop(stop, duration)
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


@main.group()
def user() -> None:
    """Web-app users (staff, admin, auditor)."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["staff", "admin", "auditor"]), default="staff", show_default=True
)
@click.option("--name", "display_name", help="The name shown in the app (default: USERNAME).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", "database_url", help="Database URL (default: the collector config's).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def user_add(
    username: str,
    role: str,
    display_name: str | None,
    config_file: Path | None,
    database_url: str | None,
    password_stdin: bool,
) -> None:
    """Add a user who signs in to the web app. Asks for the password (twice)."""
    from datetime import UTC, datetime

    from roomwatch.collector.accounts import UserExistsError, create_user
    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate

    config = _load(config_file, CollectorConfig)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = _engine(database_url or config.database_url)
    try:
        migrate(engine)
        created = create_user(
            engine, username, display_name or username, role, password, "cli", datetime.now(UTC)
        )
    except (UserExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"added {role} {created.username!r} (id {created.id})")


@user.command("unlock")
@click.argument("username", required=False)
@click.option("--address", help="Lift the locks on this address (every user from it) instead.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", "database_url", help="Database URL (default: the collector config's).")
def user_unlock(
    username: str | None, address: str | None, config_file: Path | None, database_url: str | None
) -> None:
    """Lift the sign-in locks that repeated wrong passwords put on USERNAME (audited)."""
    from datetime import UTC, datetime

    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate
    from roomwatch.web import throttle

    if (username is None) == (address is None):
        raise click.UsageError("give a USERNAME or --address, one of them")
    config = _load(config_file, CollectorConfig)
    engine = _engine(database_url or config.database_url, must_exist=True)
    try:
        migrate(engine)
        lifted = throttle.unlock(
            engine, "cli", datetime.now(UTC), username=username, address=address
        )
    finally:
        engine.dispose()
    click.echo(f"lifted {lifted} sign-in lock(s) on {username or address}")


# ---------------------------------------------------- compliance (issue 7, docs/compliance.md)

_CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Collector config (YAML): database, calendars, profiles.",
)
_DB_OPTION = click.option("--db", "database_url", help="Database URL (overrides the config).")


def _engine(url: str, must_exist: bool = False) -> Any:
    """An engine on ``url``, or one line saying why not (driver missing, bad URL, and with
    ``must_exist`` a SQLite file that is not there: reading an empty database it had just
    created would answer "nothing found", which is false reassurance)."""
    from sqlalchemy.engine import make_url

    from roomwatch.collector.database import DatabaseUrlError, make_engine

    try:
        engine = make_engine(url) if not must_exist else None
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None
    if engine is not None:
        return engine
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - make_engine names a bad URL in its own words
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).expanduser().is_file():
            raise click.ClickException(
                f"there is no database at {path or '(memory)'}: give the collector's database "
                "with --db sqlite:///PATH or database_url in --config (the collector creates "
                "it when it first runs)"
            )
    return _engine(url)


def _compliance_setup(config_file: Path | None, database_url: str | None) -> tuple[Any, Any]:
    """The collector config and an engine on its existing database (migrated)."""
    from sqlalchemy.exc import OperationalError

    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate

    config = _load(config_file, CollectorConfig)
    if database_url is not None:
        config = config.model_copy(update={"database_url": database_url})
    engine = _engine(config.database_url, must_exist=True)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise click.ClickException(
            f"cannot open the database: {str(exc.orig or exc).strip().splitlines()[0]}"
        ) from None
    return config, engine


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@main.command()
@click.argument("kind", type=click.Choice(["environment", "episodes", "students", "district"]))
@click.option("--site", help="One site (school); without it, every site.")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json", "pdf"]), default="csv", show_default=True
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here (default: stdout for CSV and JSON, a file named after the report for PDF).",
)
@_CONFIG_OPTION
@_DB_OPTION
def report(
    kind: str,
    site: str | None,
    start: Any,
    end: Any,
    fmt: str,
    output: Path | None,
    config_file: Path | None,
    database_url: str | None,
) -> None:
    """Build a compliance report (environment, episodes, students, district)."""
    from roomwatch.compliance.render import filename, render
    from roomwatch.compliance.reports import build_report

    config, engine = _compliance_setup(config_file, database_url)
    try:
        built = build_report(engine, kind, site, start.date(), end.date(), config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    data = render(built, fmt)
    if output is None and fmt == "pdf":
        output = Path(filename(built, fmt))
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    output.write_bytes(data)
    click.echo(f"{output} ({len(data)} bytes, audit chain head {built.audit_chain_head})")


@main.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("verify")
@click.option(
    "--head",
    "export_head",
    help="A chain head printed on an export: check the trail still contains it.",
)
@_CONFIG_OPTION
@_DB_OPTION
def audit_verify(
    export_head: str | None, config_file: Path | None, database_url: str | None
) -> None:
    """Check the hash chain and the incident records against it; exit 1 at the first break."""
    from sqlmodel import Session, select

    from roomwatch.collector import audit as trail
    from roomwatch.collector.models import AuditEntry
    from roomwatch.compliance import records

    _config, engine = _compliance_setup(config_file, database_url)
    try:
        result = trail.verify(engine)
        if result.broken is not None:
            with Session(engine) as session:
                entry = session.get(AuditEntry, result.broken.seq)
            says = (
                f"; the entry says: {entry.actor} did {entry.action} on {entry.subject} at "
                f"{trail.canonical_time(entry.at)}"
                if entry is not None
                else ""
            )
            click.echo(f"BROKEN at entry {result.broken.seq}: {result.broken.reason}{says}")
            click.echo(f"The chain holds up to entry {result.broken.seq - 1} (head {result.head}).")
            sys.exit(1)
        problems = records.check(engine)
        found = None
        if export_head is not None:
            with Session(engine) as session:
                found = session.exec(
                    select(AuditEntry).where(AuditEntry.hash == export_head)
                ).first()
    finally:
        engine.dispose()
    if export_head is not None and found is None and export_head != trail.GENESIS:
        click.echo(
            f"BROKEN: the export's chain head {export_head} is not in the trail "
            "(entries were removed or rewritten after the export)"
        )
        sys.exit(1)
    if problems:
        for problem in problems[:20]:
            click.echo(f"BROKEN: {problem.describe()}")
        if len(problems) > 20:
            click.echo(f"... and {len(problems) - 20} more")
        click.echo(f"The audit chain itself holds: {result.entries} entries, head {result.head}.")
        sys.exit(1)
    click.echo(
        f"OK: {result.entries} entries, head {result.head}; "
        "every incident record matches the trail."
    )
    if found is not None:
        click.echo(f"The export's chain head is entry {found.seq}.")


@main.group()
def student() -> None:
    """One student's records, by district reference (a parent's request)."""


@student.command("export")
@click.argument("ref")
@click.option("--by", "by", required=True, help="Who runs the export (user id), for the audit.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Default: stdout.")
@_CONFIG_OPTION
@_DB_OPTION
def student_export(
    ref: str, by: str, output: Path | None, config_file: Path | None, database_url: str | None
) -> None:
    """Every record of student REF as JSON (with history and verdicts)."""
    from roomwatch.compliance import privacy

    config, engine = _compliance_setup(config_file, database_url)
    try:
        found = privacy.export_student(engine, ref, by, _now, config)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    text = json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{output}: {len(found['episodes'])} record(s)")


@student.command("delete")
@click.argument("ref")
@click.option("--by", "by", required=True, help="Who runs the deletion (user id), for the audit.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_CONFIG_OPTION
@_DB_OPTION
def student_delete(
    ref: str, by: str, yes: bool, config_file: Path | None, database_url: str | None
) -> None:
    """Anonymise every record of student REF (an audit entry, without personal data, stays)."""
    from roomwatch.compliance import privacy

    if not yes:
        click.confirm(f"Clear the reference and narrative of every record of {ref}?", abort=True)
    _config, engine = _compliance_setup(config_file, database_url)
    try:
        ids = privacy.delete_student(engine, ref, by, _now)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"anonymised {len(ids)} record(s) of {ref}")


if __name__ == "__main__":  # pragma: no cover
    main()
