"""The measured interpreter of ``memory_profile.py``: imports nothing before its baseline.

``python bench/memory_child.py steps|tracemalloc BROKER_URL FOLDER RUN_S OUT_JSON``
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOM_FILE = Path(__file__).resolve().parent / "rooms" / "fitted-room.yaml"

#: (label, modules): the import steps, in the order the agent needs them.
STEPS: list[tuple[str, list[str]]] = [
    ("pydantic (+ pydantic_core)", ["pydantic"]),
    ("PyYAML", ["yaml"]),
    ("click", ["click"]),
    ("paho-mqtt (+ ssl, socket, uuid, ...)", ["paho.mqtt.client"]),
    ("gpiozero (+ importlib.metadata, email)", ["gpiozero", "gpiozero.pins.mock"]),
    (
        "APScheduler (+ asyncio, concurrent.futures, multiprocessing, tzlocal)",
        ["apscheduler.schedulers.background"],
    ),
    ("sqlite3", ["sqlite3"]),
    ("roomwatch.core (wire models, policy)", ["roomwatch.core.wire", "roomwatch.core.policy"]),
    ("roomwatch.firmware_config", ["roomwatch.firmware_config"]),
    ("roomwatch.hardware (drivers, fakes)", ["roomwatch.hardware.mock_environment"]),
    (
        "roomwatch.edge_agent, transport, cli",
        ["roomwatch.edge_agent.service", "roomwatch.cli.main"],
    ),
]


def status() -> dict[str, int]:
    fields: dict[str, int] = {}
    with open(f"/proc/{os.getpid()}/status", encoding="utf-8") as text:
        for line in text:
            key, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[key] = int(parts[0])
    return fields


def start_agent(broker_url: str, folder: Path) -> Any:
    from roomwatch.core.clock import WallClock
    from roomwatch.edge_agent.service import AgentService
    from roomwatch.firmware_config import AgentConfig, load_model
    from roomwatch.hardware.gpio import mock_factory
    from roomwatch.hardware.mock_environment import MockEnvironment

    config = load_model(ROOM_FILE, AgentConfig)
    config = config.model_copy(
        update={"mqtt": config.mqtt.with_broker_url(broker_url), "state_dir": folder / "state"}
    )
    environment = MockEnvironment(config.sensors, folder / "w1")
    service = AgentService(config, WallClock(), mock_factory(), environment=environment)
    service.start()
    if not service.link.subscribed.wait(20):
        raise RuntimeError("the profiled agent did not connect to the broker")
    return service


def steps(broker_url: str, folder: Path, run_s: float) -> dict[str, Any]:
    first = status()
    rows: list[dict[str, Any]] = [
        {
            "step": "interpreter (python, site, the venv's .pth files)",
            "rss_mb": first["VmRSS"] / 1024,
            "anon_mb": first["RssAnon"] / 1024,
            "file_mb": first["RssFile"] / 1024,
            "total_rss_mb": first["VmRSS"] / 1024,
        }
    ]
    before = first

    def note(label: str) -> None:
        nonlocal before
        now = status()
        rows.append(
            {
                "step": label,
                "rss_mb": (now["VmRSS"] - before["VmRSS"]) / 1024,
                "anon_mb": (now["RssAnon"] - before["RssAnon"]) / 1024,
                "file_mb": (now["RssFile"] - before["RssFile"]) / 1024,
                "total_rss_mb": now["VmRSS"] / 1024,
            }
        )
        before = now

    for label, modules in STEPS:
        for module in modules:
            importlib.import_module(module)
        note(label)
    service = start_agent(broker_url, folder)
    note("AgentService built and started (config, profile, devices, outbox, threads)")
    time.sleep(run_s)
    note(f"running {run_s:g} s (1 Hz sampling and telemetry)")
    service.stop()
    return {"steps": rows, "modules_loaded": len(sys.modules)}


def _group(filename: str) -> str:
    """The top-level package (or standard module) a source file belongs to."""
    if filename.startswith("<frozen importlib"):
        return "code objects of every imported module (importlib)"
    if filename.startswith("<"):
        return filename
    parts = Path(filename).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            rest = parts[parts.index(anchor) + 1 :]
            return rest[0].removesuffix(".py") if rest else filename
    for index, part in enumerate(parts):
        if part.startswith("python3"):
            rest = parts[index + 1 :]
            return rest[0].removesuffix(".py") if rest else filename
    return filename


def modules_by_package() -> list[dict[str, Any]]:
    """Loaded modules per top-level name, with the size of their bytecode files."""
    counts: dict[str, list[int]] = {}
    for name, module in list(sys.modules.items()):
        entry = counts.setdefault(name.split(".")[0], [0, 0])
        entry[0] += 1
        cached = getattr(module, "__cached__", None)
        if cached and os.path.exists(cached):
            entry[1] += os.path.getsize(cached)
    ranked = sorted(counts.items(), key=lambda kv: kv[1][1], reverse=True)[:20]
    return [{"package": k, "modules": v[0], "pyc_kb": v[1] / 1024} for k, v in ranked]


def traced(broker_url: str, folder: Path, run_s: float) -> dict[str, Any]:
    import tracemalloc

    tracemalloc.start(1)
    for _label, modules in STEPS:
        for module in modules:
            importlib.import_module(module)
    service = start_agent(broker_url, folder)
    time.sleep(run_s)
    snapshot = tracemalloc.take_snapshot()
    service.stop()
    by_group: dict[str, int] = {}
    for stat in snapshot.statistics("filename"):
        group = _group(stat.traceback[0].filename)
        by_group[group] = by_group.get(group, 0) + stat.size
    top = sorted(by_group.items(), key=lambda kv: kv[1], reverse=True)[:15]
    return {
        "python_heap_mb": sum(by_group.values()) / 1024 / 1024,
        "heap_by_package_mb": [{"package": k, "mb": v / 1024 / 1024} for k, v in top],
        "modules_by_package": modules_by_package(),
    }


def main() -> None:
    mode, broker_url, folder, run_s, out = sys.argv[1:6]
    work = steps if mode == "steps" else traced
    result = work(broker_url, Path(folder), float(run_s))
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
