"""Run every Roomwatch benchmark and record the results.

    python bench/run.py [--smoke] [--out docs/benchmarks.md] [--json bench/results.json]

From the repository root, in the development environment (``pip install -e '.[dev]'``) with
Mosquitto installed (``/usr/sbin/mosquitto``). Each benchmark runs in its own process, starts
its own Mosquitto (and collector and agent processes) on free loopback ports, and is repeated
(latencies: several independent runs, pooled; footprint: three 60 s windows). The results go
to ``bench/results.json`` and, as tables with a description of the machine, into the block
between the ``bench:results`` markers of ``docs/benchmarks.md`` (the rest of that page is
left alone).

``--smoke`` runs each benchmark briefly, all at once, to check that they still work (CI): it
prints the tables and writes files only when ``--out`` or ``--json`` is given. Nothing here
fails on a goal: the exit status is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchlib

BEGIN = "<!-- bench:results:begin (written by bench/run.py; edits here are overwritten) -->"
END = "<!-- bench:results:end -->"
DEFAULT_OUT = benchlib.ROOT / "docs" / "benchmarks.md"
DEFAULT_JSON = benchlib.BENCH / "results.json"
COMMAND = "python bench/run.py"


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    what: str


BENCHMARKS = [
    Benchmark("interlock", "interlock.py", "interlock latency (in-process AgentService)"),
    Benchmark("footprint", "footprint.py", "agent footprint (roomwatch agent --mock process)"),
    Benchmark("alert_latency", "alert_latency.py", "alert latency, agent to subscriber"),
    Benchmark("memory_profile", "memory_profile.py", "where the agent's memory goes"),
    Benchmark("ingest", "ingest.py", "collector ingest, QoS 1 telemetry into SQLite"),
    Benchmark("scale", "scale.py", "2,000 rooms at 1 Hz on one collector"),
    Benchmark("simulation", "simulate_bench.py", "a 30-minute, 3-room scenario in virtual time"),
    Benchmark("camera", "camera_bench.py", "camera presence per frame at 320x240, agent memory"),
]

#: Extra arguments of a full run (the defaults of each script otherwise).
FULL_ARGS = {"ingest": ["--rate", "12000"]}


# ---------------------------------------------------------------------- running


def _command(bench: Benchmark, smoke: bool, out: Path) -> list[str]:
    command = [sys.executable, str(benchlib.BENCH / bench.script), "--json", str(out)]
    return [*command, "--smoke"] if smoke else [*command, *FULL_ARGS.get(bench.name, [])]


def run_all(smoke: bool, only: list[str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every benchmark's result, and the error of each that could not run."""
    chosen = [b for b in BENCHMARKS if only is None or b.name in only]
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="roomwatch-bench-") as tmp:
        outputs = {b.name: Path(tmp) / f"{b.name}.json" for b in chosen}
        started: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
        for bench in chosen:
            benchlib.log(f"{bench.name}: {bench.what}")
            process = subprocess.Popen(_command(bench, smoke, outputs[bench.name]))
            started[bench.name] = (process, time.perf_counter())
            if not smoke:  # full runs one at a time: they must not disturb each other
                process.wait()
        for name, (process, began) in started.items():
            code = process.wait()
            seconds = time.perf_counter() - began
            if code != 0 or not outputs[name].exists():
                errors[name] = f"exited with status {code}"
                benchlib.log(f"{name}: FAILED ({errors[name]})")
                continue
            results[name] = json.loads(outputs[name].read_text())
            if not smoke:
                benchlib.log(f"{name}: done in {seconds:.0f} s")
    return results, errors


# ------------------------------------------------------------------------ goals


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal, the value it is judged on (the worst of the repeats), and whether it is met."""
    rows: list[dict[str, Any]] = []
    interlock = results.get("interlock")
    if interlock:
        limit = interlock["goal"]["p99_ms_below"]
        for key, label in (
            ("permit_withdrawal", "interlock: PIR edge -> permit line low, p99"),
            ("lock_alarm", "interlock: lock edge -> sounder line high, p99"),
        ):
            value = interlock[key]["edge_to_output"]["pooled"]["p99"]
            rows.append(_goal(label, value, limit, "ms"))
    footprint = results.get("footprint")
    if footprint:
        summary, goal = footprint["summary"], footprint["goal"]
        rows.append(
            _goal(
                "agent: resident memory (VmRSS, max of window), worst run",
                summary["rss_max_mb"]["p99"],
                goal["rss_mb_below"],
                "MB",
            )
        )
        rows.append(
            _goal(
                "agent: CPU, % of one core, worst run",
                summary["cpu_percent"]["p99"],
                goal["cpu_percent_below"],
                "%",
            )
        )
    alerts = results.get("alert_latency")
    if alerts:
        idle = alerts["broker_nodelay"]["edge_to_alert"]["pooled"]
        rows.append(_goal("alert: lock edge -> alert, idle, p50", idle["p50"], 5, "ms"))
        rows.append(_goal("alert: lock edge -> alert, idle, p99", idle["p99"], 20, "ms"))
        if "under_load" in alerts:
            loaded = alerts["under_load"]["edge_to_alert"]["pooled"]
            rows.append(
                _goal(
                    "alert: lock edge -> alert, 5,000 msg/s other telemetry, p99",
                    loaded["p99"],
                    50,
                    "ms",
                )
            )
    ingest = results.get("ingest")
    if ingest:
        summary = ingest["summary"]
        rows.append(
            _goal_min(
                "ingest: msg/s stored (SQLite, QoS 1), median of runs",
                summary["collector_msg_s"]["median"],
                ingest["goal"]["msg_s_at_least"],
                "msg/s",
            )
        )
        rows.append(
            _goal_min(
                "ingest: collector / mosquitto_sub, median of runs",
                summary["collector_share_of_sub"]["median"],
                ingest["goal"]["share_of_sub_at_least"],
                "",
            )
        )
        rows.append(_goal_flag("ingest: nothing lost (database counts)", summary["nothing_lost"]))
    scale = results.get("scale")
    if scale:
        value = scale["trigger_to_alert"]["pooled"]["p99"]
        rows.append(
            _goal(
                "scale: 2,000 rooms, trigger -> alert p99",
                value,
                scale["goal"]["p99_ms_below"],
                "ms",
            )
        )
        rows.append(
            _goal_flag("scale: nothing lost (database counts, every alert)", scale["nothing_lost"])
        )
    simulation = results.get("simulation")
    if simulation:
        rows.append(
            _goal(
                "simulation: 30-minute, 3-room scenario, median wall time",
                simulation["median_s"],
                simulation["goal"]["median_s_below"],
                "s",
            )
        )
    camera = results.get("camera")
    if camera:
        speed = camera["with_people_detector"]
        rows.append(
            _goal_min("camera: frames per second of capacity", speed["frames_per_s"], 30, "fps")
        )
        rows.append(
            _goal("camera: share of a core at 2 fps", speed["cpu_share_at_2fps"] * 100, 10, "%")
        )
    return rows


def _goal_min(label: str, value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"goal": label, "value": value, "at_least": limit, "unit": unit, "met": value >= limit}


def _goal_flag(label: str, ok: bool) -> dict[str, Any]:
    return {"goal": label, "value": ok, "unit": "", "met": ok}


def _goal(label: str, value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"goal": label, "value": value, "below": limit, "unit": unit, "met": value < limit}


# ---------------------------------------------------------------------- tables


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _latency_row(label: str, result: dict[str, Any], goal: str = "", met: str = "") -> str:
    pooled = result["pooled"]
    per_run = result["per_run"]
    shape = f"{result['runs']} × {per_run[0]['n'] if per_run else 0}"
    cells = [
        label,
        shape,
        _ms(pooled["p50"]),
        _ms(pooled["p99"]),
        _ms(pooled["max"]),
        _ms(result["median_of_run_p99"]),
        goal,
        met,
    ]
    return "| " + " | ".join(cells) + " |"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def latency_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| Benchmark | Runs × samples | p50 ms | p99 ms | max ms | median of run p99s "
        "| Goal | Met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    interlock = results.get("interlock")
    if interlock:
        limit = interlock["goal"]["p99_ms_below"]
        for key, label in (
            ("permit_withdrawal", "Interlock: PIR edge → permit line low (permit was granted)"),
            ("lock_alarm", "Interlock: lock edge → sounder line high (room occupied)"),
        ):
            result = interlock[key]["edge_to_output"]
            ok = result["pooled"]["p99"] < limit
            lines.append(_latency_row(label, result, f"p99 < {limit:g} ms", _yes(ok)))
        for key, label in (
            ("permit_withdrawal", "… PIR edge → `drive()` returned (state machine + outbox)"),
            ("lock_alarm", "… lock edge → `drive()` returned (state machine + outbox)"),
        ):
            lines.append(_latency_row(label, interlock[key]["edge_to_drive_return"]))
    alerts = results.get("alert_latency")
    if alerts:
        for key, broker in (
            ("mosquitto_defaults", "Mosquitto defaults"),
            ("broker_nodelay", "Mosquitto `set_tcp_nodelay true`"),
            ("under_load", "`set_tcp_nodelay true`, 5,000 msg/s of other telemetry"),
        ):
            if key not in alerts:
                continue
            variant = alerts[key]
            lines.append(
                _latency_row(
                    f"Alert: lock edge → alert at subscriber ({broker})", variant["edge_to_alert"]
                )
            )
            lines.append(
                _latency_row(
                    "… of which lock edge → telemetry at subscriber", variant["edge_to_telemetry"]
                )
            )
            lines.append(
                _latency_row(
                    "… of which telemetry → alert (collector, broker)",
                    variant["telemetry_to_alert"],
                )
            )
    scale = results.get("scale")
    if scale:
        lines.append(
            _latency_row(
                f"Scale: {scale['rooms']} rooms at 1 Hz, trigger published → alert at subscriber",
                scale["trigger_to_alert"],
                f"p99 < {scale['goal']['p99_ms_below']:g} ms",
                _yes(scale["trigger_to_alert"]["pooled"]["p99"] < scale["goal"]["p99_ms_below"]),
            )
        )
    return lines


def ingest_table(ingest: dict[str, Any]) -> list[str]:
    s = ingest["summary"]
    rate = f"{ingest['rate']:g} msg/s offered" if ingest["rate"] else "flat out"
    lines = [
        f"{ingest['runs']} runs × {ingest['duration_s']:g} s of publishing ({rate}); "
        f"collector `batch_max` {ingest['batch_max']}.",
        "",
        "| Ingest | median | lowest | highest |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("offered_msg_s", "offered by the load generators (msg/s)"),
        ("mosquitto_sub_msg_s", "received by a bare `mosquitto_sub -q 1` (msg/s)"),
        ("collector_msg_s", "stored by the collector, first publish to last commit (msg/s)"),
        (
            "collector_in_window_msg_s",
            "stored by the collector within the publishing window (msg/s)",
        ),
        ("collector_share_of_sub", "collector / mosquitto_sub"),
    ):
        v = s[key]
        lines.append(f"| {label} | {v['median']:.2f} | {v['min']:.2f} | {v['max']:.2f} |")
    cpu = sorted(r["collector_cpu_us_per_msg"] for r in ingest["per_run"])
    lines.append(
        f"| collector CPU per message (µs) | {benchlib.percentile(cpu, 50):.0f} "
        f"| {cpu[0]:.0f} | {cpu[-1]:.0f} |"
    )
    lines.append("")
    lines.append(
        "Nothing lost (database counts equal messages sent, no dead letters): "
        f"{_yes(s['nothing_lost'])}."
    )
    return lines


def footprint_table(footprint: dict[str, Any]) -> list[str]:
    summary, goal = footprint["summary"], footprint["goal"]
    runs = footprint["runs"]
    lines = [
        f"| Agent process ({runs} × {footprint['window_s']} s) | median | p99 (= worst of {runs}) "
        "| Goal | Met |",
        "|---|---|---|---|---|",
    ]
    rows = [
        ("VmRSS, max over the window (MB)", "rss_max_mb", f"< {goal['rss_mb_below']:g} MB"),
        ("VmRSS, at the end (MB)", "rss_final_mb", ""),
        ("PSS at the end: shared pages split among processes (MB)", "pss_final_mb", ""),
        ("CPU, % of one core", "cpu_percent", f"< {goal['cpu_percent_below']:g} %"),
        ("Start to online (s)", "startup_s", ""),
    ]
    limits = {"rss_max_mb": goal["rss_mb_below"], "cpu_percent": goal["cpu_percent_below"]}
    for label, key, goal_text in rows:
        spread = summary.get(key)
        if spread is None:
            continue
        met = _yes(spread["p99"] < limits[key]) if key in limits else ""
        lines.append(
            f"| {label} | {spread['median']:.2f} | {spread['p99']:.2f} | {goal_text} | {met} |"
        )
    last = footprint["per_run"][-1]
    lines.append("")
    lines.append(
        f"Last run: VmRSS {last['rss_final_mb']:.1f} MB = {last['rss_anon_final_mb']:.1f} MB "
        f"anonymous + {last['rss_file_final_mb']:.1f} MB file-backed (shared libraries); "
        f"peak since start (VmHWM) {last['hwm_mb']:.1f} MB; {last['threads']} threads; "
        f"{last['telemetry_per_s']:.2f} telemetry messages/s; start-up used "
        f"{last['startup_cpu_s']:.2f} s of CPU."
    )
    return lines


def memory_tables(profile: dict[str, Any]) -> list[str]:
    lines = [
        "| Step (in import order) | + VmRSS MB | anonymous | file-backed | VmRSS after |",
        "|---|---|---|---|---|",
    ]
    for step in profile["steps"]:
        lines.append(
            f"| {step['step']} | {step['rss_mb']:.1f} | {step['anon_mb']:.1f} | "
            f"{step['file_mb']:.1f} | {step['total_rss_mb']:.1f} |"
        )
    lines += [
        "",
        f"Python heap still allocated after the run (tracemalloc): "
        f"{profile['python_heap_mb']:.1f} MB, by where it was allocated:",
        "",
        "| Allocated in | MB |",
        "|---|---|",
    ]
    for row in profile["heap_by_package_mb"][:10]:
        lines.append(f"| {row['package']} | {row['mb']:.2f} |")
    lines += [
        "",
        f"Modules loaded: {profile.get('modules_loaded', '?')}; the most bytecode:",
        "",
        "| Package | modules | bytecode kB |",
        "|---|---|---|",
    ]
    for row in profile["modules_by_package"][:12]:
        lines.append(f"| {row['package']} | {row['modules']} | {row['pyc_kb']:.0f} |")
    return lines


def machine_line(machine: dict[str, str]) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram']} RAM; "
        f"{machine['python']}; Mosquitto {machine['mosquitto']}; {machine['os']}"
    )


def _load(report: dict[str, Any], when: str) -> str:
    return ", ".join(f"{v:.2f}" for v in report["load_average_1_5_15"][when])


def render(report: dict[str, Any]) -> str:
    results = report["benchmarks"]
    smoke = report["smoke"]
    minutes, seconds = divmod(round(report["duration_s"]), 60)
    lines = [
        "## Results" + (" (smoke run: too short to mean anything)" if smoke else ""),
        "",
        f"Measured {report['finished_at']} with `{report['command']}` "
        f"(took {minutes} min {seconds} s), Roomwatch {report['roomwatch_version']}.",
        "",
        f"**Machine:** {machine_line(report['machine'])}.",
        "",
        f"Load average (1, 5, 15 min) before: {_load(report, 'before')}; "
        f"after: {_load(report, 'after')} (other work on the machine shows here).",
        "",
    ]
    if report["errors"]:
        lines += [f"**Could not run:** {report['errors']}", ""]
    lines += ["### Latency", "", *latency_table(results), ""]
    if "ingest" in results:
        lines += [
            "### Collector ingest (`bench/ingest.py`)",
            "",
            *ingest_table(results["ingest"]),
            "",
        ]
    if "scale" in results:
        sc = results["scale"]
        run = sc["per_run"][-1]
        lines += [
            "### Scale (`bench/scale.py`)",
            "",
            f"{sc['rooms']} rooms, {sc['duration_s']:g} s, a locked door per room every "
            f"{sc['trigger_every_s']:g} s: {run['sent']} telemetry messages, "
            f"{run['triggers']} alerts ({run['alerts_heard']} heard); collector CPU "
            f"{run['collector_cpu_percent']:.0f} % of one core; nothing lost: "
            f"{_yes(sc['nothing_lost'])} (database: {run['database']}).",
            "",
        ]
    if "footprint" in results:
        lines += ["### Agent footprint", "", *footprint_table(results["footprint"]), ""]
    if "memory_profile" in results:
        lines += [
            "### Where the agent's memory goes (`bench/memory_profile.py`)",
            "",
            *memory_tables(results["memory_profile"]),
            "",
        ]
    lines += ["### Goals", "", "| Goal | Value | Limit | Met |", "|---|---|---|---|"]
    for row in report["goals"]:
        lines.append(_goal_line(row))
    return "\n".join(lines) + "\n"


def _goal_line(row: dict[str, Any]) -> str:
    unit = row["unit"]
    if row["value"] is None:  # filled by another benchmark's owner
        return f"| {row['goal']} | (not run here) | < {row['below']:g} {unit} | - |"
    if isinstance(row["value"], bool):
        return f"| {row['goal']} | {'yes' if row['value'] else 'no'} | yes | {_yes(row['met'])} |"
    at_least = row.get("at_least")
    limit = f"≥ {at_least:g} {unit}" if at_least is not None else f"< {row['below']:g} {unit}"
    return f"| {row['goal']} | {row['value']:.2f} {unit} | {limit} | {_yes(row['met'])} |"


def write_markdown(path: Path, block: str) -> None:
    """Replace the results block of ``path`` (or create the page around it)."""
    fenced = f"{BEGIN}\n{block}{END}\n"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Benchmarks\n\nRepeat with `{COMMAND}`.\n\n{fenced}", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].removeprefix("\n")
        text = f"{head}{fenced}{tail}"
    else:
        text = text.rstrip("\n") + f"\n\n{fenced}"
    path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------ main


def _roomwatch_version() -> str:
    done = subprocess.run(
        [*benchlib.roomwatch_command(), "version"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="briefly, all at once (CI)")
    parser.add_argument("--out", type=Path, help=f"markdown page (default {DEFAULT_OUT})")
    parser.add_argument("--json", type=Path, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument(
        "--only",
        action="append",
        choices=[b.name for b in BENCHMARKS],
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: keep the other benchmarks' results from the existing results file",
    )
    args = parser.parse_args()
    out = args.out or (None if args.smoke else DEFAULT_OUT)
    json_out = args.json or (None if args.smoke else DEFAULT_JSON)

    began = time.perf_counter()
    load_before = os.getloadavg()
    results, errors = run_all(args.smoke, args.only)
    if args.merge and json_out is not None and json_out.exists():
        earlier = json.loads(json_out.read_text())
        results = {**earlier.get("benchmarks", {}), **results}
    report: dict[str, Any] = {
        "command": COMMAND + (" --smoke" if args.smoke else ""),
        "smoke": args.smoke,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.perf_counter() - began, 1),
        "machine": benchlib.machine(),
        "roomwatch_version": _roomwatch_version(),
        "load_average_1_5_15": {
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in os.getloadavg()],
        },
        "errors": errors,
        "goals": goals(results),
        "benchmarks": results,
    }
    block = render(report)
    sys.stdout.write(block)
    if json_out is not None:
        benchlib.write_json(json_out, report)
        benchlib.log(f"results written to {json_out}")
    if out is not None:
        write_markdown(out, block)
        benchlib.log(f"tables written to {out}")
    benchlib.log(f"all done in {report['duration_s']:.1f} s")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
