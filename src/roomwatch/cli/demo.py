"""``roomwatch demo``: four simulated rooms living through a school day, with nothing installed.

The real programs, as in ``roomwatch simulate``: an embedded MQTT broker, the
collector on SQLite in the user's data directory (serving its web pages), and
four agents on mock pins and fake chips, driven by :data:`DEMO_DAY` on a clock
that runs at ``speed`` times real time and starts the day over when it ends.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
import platformdirs

from roomwatch.collector.accounts import create_user, user_named
from roomwatch.collector.config import WebSettings, host_calendar
from roomwatch.collector.service import Collector
from roomwatch.simulation.engine import Options, Simulation
from roomwatch.simulation.scenario import Scenario, parse_scenario
from roomwatch.transport.ports import check_free
from roomwatch.web.app import WebServer

log = logging.getLogger("roomwatch.demo")

#: Half an hour of four rooms, played over and over. Something happens in the first
#: minute; by the end of the first cycle every kind of event has been seen once. Staff
#: stay at the window until the episode has ended (90 s after the room empties).
DEMO_DAY = """
duration: 30m
rooms:
  - {id: room-101, site: lincoln, profile: us-ny}
  - {id: room-102, site: lincoln, profile: default}
  - {id: room-103, site: lincoln, profile: us-ct}
  - {id: room-104, site: lincoln, profile: us-mi, student_band: elementary}
steps:
  # room-101: calm episodes, a teacher at the window throughout.
  - {at: 5s, room: room-101, set: {staff_present: true, occupied: true, door_closed: true},
     note: "a student takes a break in the calm room, a teacher at the window"}
  - {at: 4m, room: room-101, set: {door_closed: false, occupied: false},
     note: "calm again: the student goes back to class"}
  - {at: 6m, room: room-101, set: {staff_present: false}}
  - {at: 15m, room: room-101, set: {staff_present: true, occupied: true, door_closed: true},
     note: "another short break"}
  - {at: 19m, room: room-101, set: {door_closed: false, occupied: false}}
  - {at: 21m, room: room-101, set: {staff_present: false}}
  # room-102: a lock event, then a hot afternoon.
  - {at: 20s, room: room-102, set: {staff_present: true, occupied: true, door_closed: true},
     note: "a student comes in with a staff member"}
  - {at: 50s, room: room-102, set: {door_locked: true},
     note: "someone throws the bolt: the agent releases the lock and sounds at once"}
  - {at: 65s, room: room-102, set: {door_locked: false}, note: "the bolt is drawn back"}
  - {at: 5m, room: room-102, set: {door_closed: false, occupied: false}}
  - {at: 7m, room: room-102, set: {staff_present: false}}
  - {at: 20m, room: room-102, set: {staff_present: true, occupied: true, door_closed: true}}
  - {at: 21m, room: room-102, set: {temperature_c: 29.5},
     note: "the afternoon sun: the room gets too hot"}
  - {at: 24m, room: room-102, set: {temperature_c: 23}, note: "a window is opened"}
  - {at: 25m, room: room-102, set: {door_closed: false, occupied: false}}
  - {at: 27m, room: room-102, set: {staff_present: false}}
  # room-103: the watching staff member is called away.
  - {at: 2m, room: room-103, set: {staff_present: true, occupied: true, door_closed: true}}
  - {at: 3m, room: room-103, set: {staff_present: false},
     note: "the staff member at the window is called away"}
  - {at: 3m40s, room: room-103, set: {staff_present: true}, note: "back at the window"}
  - {at: 8m, room: room-103, set: {door_closed: false, occupied: false}}
  - {at: 9m30s, room: room-103, set: {staff_present: false}}
  # room-104: an episode that runs past Michigan's 15 minutes for an elementary pupil.
  - {at: 1m, room: room-104, set: {staff_present: true, occupied: true, door_closed: true},
     note: "a long episode begins (the limit here is 15 minutes)"}
  - {at: 18m, room: room-104, set: {door_closed: false, occupied: false}}
  - {at: 20m, room: room-104, set: {staff_present: false}}
faults:
  - {at: 10m, kind: agent_crash, room: room-103, for: 3m,
     note: "the agent loses power: its last will says it is offline"}
expect:  # what a newcomer sees in the first half hour (tests/test_simulate_demo.py)
  - {episode: ended, room: room-101, count: 2}
  - {alert: door_locked_while_occupied, room: room-102, between: [50s, 50s]}
  - {action: lock_released, room: room-102, between: [50s, 50s]}
  - {alert: monitoring_lapse, room: room-103, count: 1}
  - {alert: time_limit_exceeded, room: room-104, between: [16m, 16m]}
  - {alert: temperature_out_of_range, room: room-102, between: [21m, 21m1s]}
  - {alert: agent_offline, room: room-103, between: [10m, 10m]}
  - {no_alert: monitoring_lapse, room: room-101}
  - {no_alert: monitoring_lapse, room: room-102}
  - {no_alert: monitoring_lapse, room: room-104}
"""

DEFAULT_HTTP_PORT = 8080


def demo_day() -> Scenario:
    return parse_scenario(DEMO_DAY, "the demo day")


def data_dir() -> Path:
    """Where the demo keeps its database, apart from a real collector's."""
    return Path(platformdirs.user_data_dir("roomwatch")) / "demo"


#: The demo's sign-in (its own database, served on 127.0.0.1 only).
DEMO_USER, DEMO_PASSWORD = "demo", "roomwatch-demo"


def announce(http_url: str) -> None:
    """Tell the newcomer where to look, and how to sign in."""
    click.echo(
        f"\nRoomwatch demo: four rooms at site 'lincoln' are living through a school day.\n"
        f"Open {http_url} in a browser and sign in as {DEMO_USER!r} with the password "
        f"{DEMO_PASSWORD!r} to watch them. Ctrl-C stops.\n"
    )


def ensure_demo_user(collector: Collector) -> None:
    """The demo's admin, made once in the demo's own database."""
    engine = collector.store.engine
    if user_named(engine, DEMO_USER) is None:
        create_user(
            engine, DEMO_USER, "Demo admin", "admin", DEMO_PASSWORD, "demo", collector.clock.now()
        )


def web_beside(folder: Path, host: str, port: int) -> Callable[[Collector], Callable[[], None]]:
    """Serve the web app beside each collector the simulation starts."""

    def start(collector: Collector) -> Callable[[], None]:
        ensure_demo_user(collector)
        web = WebServer(
            collector, WebSettings(host=host, port=port, vapid_key_file=folder / "vapid.pem")
        )
        try:
            web.start()
        except OSError as exc:
            log.error("cannot serve the web app on %s:%s: %s (try --http-port)", host, port, exc)
            return lambda: None
        return web.stop

    return start


def run_demo(
    broker_port: int,
    http_port: int | None,
    speed: float,
    duration: float | None,
    folder: Path | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run until ``stop`` is set or ``duration`` real seconds have passed."""
    stop = stop or threading.Event()
    http_host = "127.0.0.1"
    # Both ports before anything starts: a taken one is one line saying which, and what to do.
    check_free(
        "127.0.0.1",
        broker_port,
        "the demo's MQTT broker",
        "stop the program that uses it (a Mosquitto? `ss -ltnp` names it) or pick another "
        "port with --port",
    )
    if http_port is not None:
        check_free(
            http_host,
            http_port,
            "the demo's web app",
            "stop the program that uses it or pick another port with --http-port",
        )
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    timer = threading.Timer(duration, stop.set) if duration is not None else None

    def ready() -> None:
        if http_port is not None:
            announce(f"http://{http_host}:{http_port}/")
        if timer is not None:
            timer.start()

    # Agents keep their outboxes in a fresh folder each time: a demo never resumes
    # yesterday's episode. The collector's database is kept, so history builds up.
    with tempfile.TemporaryDirectory(prefix="roomwatch-demo-") as agents:
        options = Options(
            speed=speed,
            repeat=True,
            start=datetime.now(UTC).replace(microsecond=0),
            workdir=Path(agents),
            database_url=f"sqlite:///{folder / 'collector.db'}",
            broker_port=broker_port,
            http_port=None,  # health and metrics: not needed for a demo
            on_collector=web_beside(folder, http_host, http_port) if http_port else None,
            collector_name="demo",
            calendar=host_calendar(),  # as `roomwatch collector`: the machine's time zone
            stop=stop,
            on_ready=ready,
        )
        try:
            Simulation(demo_day(), options).run(report=False)
        finally:
            if timer is not None:
                timer.cancel()
    log.info("demo stopped; its database stays in %s", folder)
