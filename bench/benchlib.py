"""Shared pieces of the benchmarks: a real Mosquitto, agent and collector processes, an MQTT
listener that timestamps what it hears, statistics, and a description of the machine.

Every time here is ``time.perf_counter_ns()`` (CLOCK_MONOTONIC on Linux, so one clock for
all the processes of a run). Nothing here asserts on time: a benchmark reports, it never fails
on a goal.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ROOMS = BENCH / "rooms"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

#: The site both bench rooms report under.
SITE = "bench"


def log(message: str) -> None:
    """Progress on stderr (stdout stays free for results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll until ``predicate`` holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, a message never came)."""


# ------------------------------------------------------------------- processes


#: The broker under load: no per-message debug log; a consumer that falls behind gets its
#: QoS 1 messages queued without limit (the default, 1000, drops the rest: a loss the
#: benchmark would blame on the collector), and up to 1000 of them in flight at once (the
#: default, 20, makes every consumer wait for its PUBACKs).
LOADED_CONF = (
    "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
    "log_type information\nlog_type subscribe\n"
    "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
)


class Mosquitto:
    """A real Mosquitto on a free loopback port, without persistence, for one benchmark.

    ``nodelay``: ``set_tcp_nodelay true`` (Mosquitto's default, and Debian's, is false: Nagle's
    algorithm on the broker's sockets). ``loaded``: tuned for load (:data:`LOADED_CONF`)."""

    def __init__(self, folder: Path, nodelay: bool = False, loaded: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.folder = folder / f"mosquitto-{self.port}"
        self.folder.mkdir(parents=True)
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            + ("set_tcp_nodelay true\n" if nodelay else "")
            + (LOADED_CONF if loaded else "log_dest stderr\nlog_type all\n")
        )
        self.log = self.folder / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        #: The collector process on this broker, when ``broker_and_collector`` started one.
        self.collector: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def __enter__(self) -> Mosquitto:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        if not wait_until(lambda: _accepting(self.port), timeout=10):
            self.__exit__()
            raise BenchError(f"Mosquitto did not start on {self.port}: {self.log.read_text()}")
        return self

    def __exit__(self, *_: object) -> None:
        stop_process(self.process)
        self.process = None

    def logged(self, *words: str) -> bool:
        """Whether one line of the broker's log holds every one of ``words``."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return any(all(w in line for w in words) for line in text.splitlines())


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> int | None:
    """SIGTERM one process we started and wait for it (SIGKILL if it hangs); its return code."""
    if process is None:
        return None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    if process.stdin is not None:
        process.stdin.close()
    return process.returncode


def roomwatch_command() -> list[str]:
    """The installed ``roomwatch`` entry point of this interpreter's environment."""
    script = Path(sys.executable).parent / "roomwatch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "roomwatch"]


def start_collector(
    broker: Mosquitto, folder: Path, config: dict[str, Any] | None = None
) -> subprocess.Popen[bytes]:
    """``roomwatch collector`` (the real Collector, SQLite in ``folder``) in its own process;
    ``config``: collector settings, written as its YAML (JSON is YAML) config file."""
    folder.mkdir(parents=True, exist_ok=True)
    # No fixed /healthz port unless asked for: the collector refuses a taken port, and one
    # bench's collector may still hold 9480 while the next starts.
    config = {"http_port": None, **(config or {})}
    config_file = folder / "collector.yaml"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    config_args = ["--config", str(config_file)]
    with (folder / "collector.log").open("ab") as out:
        process = subprocess.Popen(
            [
                *roomwatch_command(),
                "--log-level",
                "warning",
                "collector",
                *config_args,
                "--broker",
                broker.url,
                "--db",
                f"sqlite:///{folder / 'collector.db'}",
                "--no-web",  # measured alone; the web app is measured by its own tests
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(folder)},
        )
    _maybe_profile(process.pid, folder)
    return process


def _maybe_profile(pid: int, folder: Path) -> None:
    """BENCH_PYSPY=FILE (and BENCH_PYSPY_S, default 30): sample the collector with py-spy for
    that many seconds from its start, as collapsed stacks (how the findings were profiled)."""
    profile = os.environ.get("BENCH_PYSPY")
    if not profile:
        return
    seconds = os.environ.get("BENCH_PYSPY_S", "30")
    py_spy = str(Path(sys.executable).parent / "py-spy")
    with (folder / "py-spy.log").open("ab") as out:
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--format",
                "raw",
                "--threads",
                "-r",
                "250",
                "-d",
                seconds,
                "-o",
                profile,
                "--pid",
                str(pid),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def broker_and_collector(
    folder: Path,
    nodelay: bool = False,
    loaded: bool = False,
    config: dict[str, Any] | None = None,
) -> Iterator[Mosquitto]:
    """A fresh Mosquitto and a fresh collector (its own process and database) on it."""
    with Mosquitto(folder, nodelay, loaded) as broker:
        collector = start_collector(broker, folder / "collector", config)
        broker.collector = collector
        try:
            # Subscribed before any agent starts: nothing is missed and replayed 15 s later.
            if not wait_until(
                lambda: broker.logged("roomwatch-collector-1", "/telemetry"), 60, 0.05
            ):
                raise BenchError(f"the collector never subscribed (see {folder / 'collector'})")
            yield broker
        finally:
            stop_process(collector)


def start_agent(
    broker: Mosquitto, room_file: Path, folder: Path, console: bool
) -> subprocess.Popen[bytes]:
    """``roomwatch agent --mock`` in its own process; ``console``: keep stdin open to drive
    its mock pins with lines such as ``door_lock on``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "agent.log").open("ab") as out:
        return subprocess.Popen(
            [
                *roomwatch_command(),
                "agent",
                "--mock",
                "--config",
                str(room_file),
                "--broker",
                broker.url,
                "--state-dir",
                str(folder / "state"),
            ],
            stdin=subprocess.PIPE if console else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def send_line(process: subprocess.Popen[bytes], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{line}\n".encode())
    process.stdin.flush()


# ------------------------------------------------------------------------ MQTT


@dataclass(frozen=True, slots=True)
class Heard:
    at_ns: int
    topic: str
    body: dict[str, Any]


class Listener:
    """A plain paho client that timestamps (perf_counter_ns) every message it receives."""

    def __init__(self, broker: Mosquitto, topics: Sequence[str]) -> None:
        import paho.mqtt.client as mqtt  # here: the memory profile imports this module first
        from paho.mqtt.enums import CallbackAPIVersion

        self.inbox: queue.Queue[Heard] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise BenchError("the bench listener could not subscribe")

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        at = time.perf_counter_ns()
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {}
        self.inbox.put(Heard(at, msg.topic, body if isinstance(body, dict) else {}))

    def wait_for(self, match: Callable[[Heard], bool], timeout: float) -> Heard:
        """The next message that ``match`` accepts; the ones before it are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"no matching message within {timeout} s")
            try:
                heard = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if match(heard):
                return heard

    def drain(self) -> list[Heard]:
        out: list[Heard] = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def room_topic(room: str, kind: str) -> str:
    return f"roomwatch/v1/{SITE}/{room}/{kind}"


# ------------------------------------------------------------------ statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100)
    return float(sorted_values[int(rank) - 1])


def summarize(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p90, p99, max, mean of ``values`` (in whatever unit they are)."""
    ordered = sorted(values)
    n = len(ordered)
    return {
        "n": n,
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": float(ordered[-1]) if ordered else float("nan"),
        "mean": sum(ordered) / n if n else float("nan"),
    }


def ns_to_ms(values: Iterable[int]) -> list[float]:
    return [v / 1e6 for v in values]


def latency_result(per_run_ms: list[list[float]]) -> dict[str, Any]:
    """Pooled p50/p99/max over every run's samples, and each run's own summary."""
    pooled = [v for run in per_run_ms for v in run]
    runs = [summarize(run) for run in per_run_ms]
    return {
        "unit": "ms",
        "runs": len(per_run_ms),
        "pooled": summarize(pooled),
        "per_run": runs,
        "median_of_run_p99": percentile(sorted(r["p99"] for r in runs), 50),
    }


# --------------------------------------------------------------------- machine


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine() -> dict[str, str]:
    """CPU, cores, RAM, Python, Mosquitto and OS of this machine."""
    cpu, virtual = "unknown", False
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and cpu == "unknown":
                cpu = value.strip()
            if key.strip() == "flags" and "hypervisor" in value.split():
                virtual = True
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = platform.system()
    try:
        with open("/etc/os-release", encoding="utf-8") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "cpu": cpu + (" (virtual machine)" if virtual else ""),
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "mosquitto": _first_line([MOSQUITTO, "-h"]).removeprefix("mosquitto version ").strip(),
        "os": f"{os_name}, Linux {platform.release()}",
    }


# ----------------------------------------------------------------- /proc views


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            key, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[key] = int(parts[0])
    return fields


def proc_pss_kb(pid: int) -> int | None:
    """Proportional set size (shared pages split among their users), if readable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLOCK_TICKS


def proc_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def write_json(path: Path, data: object, stream: TextIO | None = None) -> None:
    text = json.dumps(data, indent=2, sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
    if stream is not None:
        stream.write(text + "\n")


# ------------------------------------------------------------ load generators


def start_loadgen(
    spec: dict[str, Any], folder: Path, name: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """``bench/loadgen.py`` in its own process; returns it and the file its result goes to."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / f"{name}.spec.json"
    out_file = folder / f"{name}.out.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with (folder / f"{name}.log").open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / "loadgen.py"), str(spec_file), str(out_file)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
    return process, out_file


def finish_loadgen(
    process: subprocess.Popen[bytes], out_file: Path, timeout: float
) -> dict[str, Any]:
    """Wait for a load generator and read its result (BenchError if it failed)."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise BenchError(f"load generator {out_file.name} did not finish in {timeout} s") from None
    if code != 0 or not out_file.exists():
        raise BenchError(f"load generator {out_file.name} failed (status {code}); see its log")
    result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
    return result


def metrics(port: int) -> dict[str, float]:
    """The collector's Prometheus metrics (unlabelled ones, and ``name{labels}`` as written)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, lowest and highest of a few runs' values."""
    ordered = sorted(values)
    return {
        "median": percentile(ordered, 50),
        "min": ordered[0] if ordered else float("nan"),
        "max": ordered[-1] if ordered else float("nan"),
        "n": len(ordered),
    }
