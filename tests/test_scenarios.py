"""The scenario library (tests/scenarios): every alert type and every policy profile, run on
the real agent, embedded broker and collector in virtual time, with its expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roomwatch.core.policy import available_profiles
from roomwatch.core.wire import AlertType
from roomwatch.simulation.engine import simulate
from roomwatch.simulation.expect import check
from roomwatch.simulation.report import Result
from roomwatch.simulation.scenario import ExpectAlert, Scenario, load_scenario
from roomwatch.simulation.summary import as_json

LIBRARY = Path(__file__).parent / "scenarios"
SCENARIOS = sorted(LIBRARY.glob("*.yaml"))

_results: dict[Path, Result] = {}


def run(path: Path) -> tuple[Scenario, Result]:
    """Run a library scenario (once per session; the determinism test runs one again)."""
    scenario = load_scenario(path)
    if path not in _results:
        _results[path] = simulate(scenario)
    return scenario, _results[path]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_meets_its_expectations(path: Path) -> None:
    scenario, result = run(path)
    outcomes = check(scenario, result)
    assert outcomes, f"{path.name} has no expectations"
    failed = [str(o) for o in outcomes if not o.met]
    assert not failed, f"{path.name}:\n" + "\n".join(failed)
    # Whatever the faults, every message an agent published reached the store, once.
    assert result.messages.published > 0
    assert result.messages.lost == 0
    assert result.messages.duplicates_stored == 0


def test_the_same_scenario_gives_the_same_json_twice() -> None:
    """The fault scenario has the most room for a race: broker down, crash, restart."""
    path = LIBRARY / "faults.yaml"
    scenario, first = run(path)
    again = simulate(scenario)
    assert as_json(again, check(scenario, again)) == as_json(first, check(scenario, first))
    assert json.loads(as_json(again, []))["alerts"], "the scenario raises alerts"


def test_the_library_covers_every_profile() -> None:
    used = {room.profile for path in SCENARIOS for room in load_scenario(path).rooms}
    assert set(available_profiles()) - used == set()


def test_the_library_expects_every_alert_type() -> None:
    expected = {
        e.alert
        for path in SCENARIOS
        for e in load_scenario(path).expect
        if isinstance(e, ExpectAlert) and e.count != 0
    }
    # The deadline check runs in simulation too (issue 13): no type is out of reach.
    assert set(AlertType) - expected == set()
