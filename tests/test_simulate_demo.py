"""``roomwatch demo``: the demo day shows what it promises, and the command starts and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from conftest import free_port, wait_until
from roomwatch.cli.demo import DEMO_PASSWORD, DEMO_USER, demo_day
from roomwatch.simulation.engine import simulate
from roomwatch.simulation.expect import check


def test_the_demo_day_shows_every_promised_event() -> None:
    """Calm episodes, a lock event, a lapse, an overtime, a hot room, an agent offline."""
    scenario = demo_day()
    result = simulate(scenario)
    failed = [str(o) for o in check(scenario, result) if not o.met]
    assert not failed, "\n".join(failed)
    assert result.messages.lost == 0


def test_the_demo_runs_until_ctrl_c_and_stops_cleanly(tmp_path: Path) -> None:
    lines: list[str] = []
    announced = threading.Event()
    http_port = free_port()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roomwatch",
            "demo",
            "--port",
            str(free_port()),
            "--http-port",
            str(http_port),
            "--speed",
            "30",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "lock engaged while the room may be occupied" in line:
                    announced.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            # At 30x, the lock event 50 s into the day comes within seconds of the start.
            assert announced.wait(60), "no lock event:\n" + "".join(lines)
            # The printed login works, and the web app shows the four rooms live.
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as web:
                signed = web.post("/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
                assert signed.status_code == 303, signed.text
                assert wait_until(lambda: len(web.get("/api/v1/rooms").json()) == 4, 30)
                assert "room-102" in web.get("/").text
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0, "".join(lines)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(timeout=5)
    text = "".join(lines)
    assert "Open http://127.0.0.1:" in text
    assert f"sign in as {DEMO_USER!r} with the password {DEMO_PASSWORD!r}" in text
    assert "received SIGINT, stopping" in text
    assert (tmp_path / "demo" / "collector.db").exists()
    assert "Traceback" not in text
