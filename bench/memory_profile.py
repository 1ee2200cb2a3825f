"""Where the agent's resident memory goes: by import step, and by package once running.

Two fresh interpreters (``bench/memory_child.py``, which imports nothing before its first
reading), each doing what ``roomwatch agent --mock`` does (the fitted bench room, connected to
a real Mosquitto):

* ``steps``: imports the agent's libraries one after the other (each with the standard
  modules it pulls in first, so a module shared by two is charged to the first), then builds
  and starts the AgentService and lets it run; after each step, VmRSS and its anonymous and
  file-backed parts (shared libraries, mapped files) from /proc/self/status.
* ``tracemalloc``: the same start under ``tracemalloc``, then the Python heap still allocated
  after a few seconds of running, summed by top-level package (where the allocating line is),
  and the modules loaded per package with the size of their bytecode.

Run: ``python bench/memory_profile.py [--smoke] [--json FILE]`` (``bench/run.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib

CHILD = benchlib.BENCH / "memory_child.py"


def run(smoke: bool, folder: Path) -> dict[str, Any]:
    run_s = 1.0 if smoke else 10.0
    result: dict[str, Any] = {}
    with benchlib.Mosquitto(folder) as broker:
        for mode in ("steps", "tracemalloc"):
            benchlib.log(f"memory profile: {mode}")
            out = folder / f"{mode}.json"
            command = [sys.executable, str(CHILD), mode, broker.url, str(folder / mode)]
            subprocess.run([*command, str(run_s), str(out)], check=True)
            result.update(json.loads(out.read_text()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="run the agent 1 s, not 10 s")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-memory-") as tmp:
        result = run(args.smoke, Path(tmp))
    if args.json:
        benchlib.write_json(args.json, result)
    else:
        json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
