"""Device configuration: the examples are valid; errors name key path and line."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from roomwatch.cli.main import main
from roomwatch.collector.config import CollectorConfig
from roomwatch.firmware_config import (
    AgentConfig,
    ConfigError,
    MqttSettings,
    load_model,
    parse_broker_url,
    parse_model,
)

EXAMPLES = sorted(
    Path(str(resources.files("roomwatch.firmware_config") / "examples")).glob("*.yaml")
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_model(text, AgentConfig)
    return [str(p) for p in info.value.problems]


def test_there_are_two_documented_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["room-full.yaml", "room-minimal.yaml"]
    for path in EXAMPLES:
        assert path.read_text().startswith("#"), f"{path.name} explains itself in a comment"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    config = load_model(path, AgentConfig)
    assert config.sensors.door_lock is not None
    assert config.outputs.lock_permit is not None


def test_an_empty_file_runs_on_defaults() -> None:
    config = parse_model("", AgentConfig)
    assert config.profile == "default"
    assert config.mqtt.protocol == "3.1.1"


def test_a_misspelt_key_names_its_path_and_line() -> None:
    text = (
        "site: lincoln\nsensors:\n  door_lock: {kind: contact, pin: 17}\n"
        "  dor_closed: {kind: contact, pin: 27}\n"
    )
    assert problems_of(text) == [
        "sensors.dor_closed (line 4): unknown key (check the spelling; see the schema docs)"
    ]


def test_every_problem_is_listed_in_line_order() -> None:
    text = "mqtt:\n  port: 99999\nsensors:\n  motion: {kind: pir, pin: 40}\nprofile: us-xx\n"
    found = problems_of(text)
    assert [p.split(" ")[0] for p in found] == ["mqtt.port", "sensors.motion.pin", "profile"]
    assert "(line 2)" in found[0] and "(line 4)" in found[1] and "(line 5)" in found[2]
    assert "unknown policy profile 'us-xx'" in found[2]


def test_yaml_syntax_errors_give_the_line() -> None:
    (problem,) = problems_of("site: demo\nroom: [unclosed\n")
    assert "line" in problem and "not valid YAML" in problem


def test_duplicate_keys_are_errors_not_silently_overwritten() -> None:
    (problem,) = problems_of("site: a\nsite: b\n")
    assert "duplicate key 'site'" in problem and "(line 2)" in problem


def test_one_pin_cannot_serve_two_devices() -> None:
    (problem,) = problems_of(
        "sensors:\n  door_lock: {kind: contact, pin: 5}\noutputs:\n  lock_permit: {pin: GPIO5}\n"
    )
    assert "pin GPIO5 is used by both door_lock and lock_permit" in problem


def test_external_pull_needs_an_active_level() -> None:
    (problem,) = problems_of("sensors:\n  door_lock: {kind: contact, pin: 17, pull_up: null}\n")
    assert problem.startswith("sensors.door_lock (line 2)") and "active_high" in problem


def test_ids_follow_the_topic_rules() -> None:
    (problem,) = problems_of("room: Room 101\n")
    assert problem.startswith("room (line 1)")


def test_the_digest_changes_with_the_config() -> None:
    a = parse_model("room: room-1\n", AgentConfig)
    b = parse_model("room: room-2\n", AgentConfig)
    assert a.digest() != b.digest()
    assert a.digest() == parse_model("room: room-1\n", AgentConfig).digest()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://10.0.0.5", ("10.0.0.5", 1883, False)),
        ("mqtts://broker.example.org", ("broker.example.org", 8883, True)),
        ("mqtt://127.0.0.1:18830", ("127.0.0.1", 18830, False)),
    ],
)
def test_broker_urls(url: str, expected: tuple[str, int, bool]) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://x", "mqtt://", "mqtt://u:p@host", "mqtt://host:notaport", "mqtt://host/path"]
)
def test_bad_broker_urls_are_explained(url: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        parse_broker_url(url)


def test_broker_url_override_switches_tls() -> None:
    settings = MqttSettings().with_broker_url("mqtts://b.example.org:8884")
    assert (settings.host, settings.port, settings.tls is not None) == ("b.example.org", 8884, True)
    assert MqttSettings().with_broker_url("mqtt://b").tls is None


def test_collector_config_is_strict_too(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("name: c1\ndatabse_url: sqlite:///x.db\n")
    with pytest.raises(ConfigError, match=r"databse_url \(line 2\): unknown key"):
        load_model(path, CollectorConfig)


# ------------------------------------------------------------------ the command


def test_validate_config_exits_0_for_each_example() -> None:
    runner = CliRunner()
    for path in EXAMPLES:
        result = runner.invoke(main, ["validate-config", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_validate_config_exits_1_naming_the_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "room.yaml"
    bad.write_text(EXAMPLES[1].read_text().replace("door_closed:", "door_closd:"))
    # A real process, as an installer runs it.
    result = subprocess.run(
        [sys.executable, "-m", "roomwatch", "validate-config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "door_closd" in text)
    assert f"sensors.door_closd (line {line}): unknown key" in result.stderr


def test_validate_config_for_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate-config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read the file" in result.output


def test_validate_config_for_a_collector(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: district-1\nshare_group: collectors\n")
    result = CliRunner().invoke(main, ["validate-config", "--collector", str(path)])
    assert result.exit_code == 0, result.output
