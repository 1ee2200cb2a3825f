"""Policy profiles: every row of POLICIES.md's table, as data that cites its seed."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from roomwatch.cli.main import main
from roomwatch.core.policy import ProfileError, StudentBand, available_profiles, load_profile
from roomwatch.core.policy.model import NotificationDeadline, PolicyProfile, RoomRequirements

REQUIRED = {
    "default",
    "us-ny",
    "us-ny-north-colonie",
    "ca-ab",
    "us-mi",
    "us-ct",
    "us-il",
    "us-ms",
    "us-md",
    "us-or",
    "us-la",
    "us-wy",
    "us-mn",
    "us-ma",
    "us-tn",
    "us-me",
}
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def test_every_required_profile_exists() -> None:
    assert set(available_profiles()) >= REQUIRED


@pytest.mark.parametrize("profile_id", sorted(REQUIRED))
def test_each_profile_loads_and_cites_a_seed(profile_id: str) -> None:
    profile = load_profile(profile_id)
    assert profile.id == profile_id
    assert profile.sources, "every profile cites its source"
    assert all(s.seed in {"000", "001", "002", "003", "004"} for s in profile.sources)
    assert profile.locking_allowed is False


def test_seed_files_cited_are_the_ones_in_shared() -> None:
    # CI clones the repo beside shared/; a contributor's clone may not have it.
    present = (
        {p.name[:3] for p in SEEDS.iterdir()}
        if SEEDS.exists()
        else {"000", "001", "002", "003", "004"}
    )
    for profile_id in available_profiles():
        for source in load_profile(profile_id).sources:
            assert source.seed in present


def test_michigan_limits_differ_by_band() -> None:
    limit = load_profile("us-mi").time_limit
    assert limit.minutes_for(StudentBand.ELEMENTARY) == 15
    assert limit.minutes_for(StudentBand.SECONDARY) == 20
    assert limit.minutes_for(None) == 15, "band unknown: the strictest limit"


def test_connecticut_checkpoints_at_15_then_every_30_and_a_one_hour_authorization() -> None:
    checkpoints = load_profile("us-ct").checkpoints
    repeating = [c for c in checkpoints if c.every_min]
    assert any(c.at_min == 15 and c.every_min == 30 for c in repeating)
    assert any(c.at_min == 60 for c in checkpoints)


def test_oregon_reviews_every_15_minutes_after_30() -> None:
    checkpoints = load_profile("us-or").checkpoints
    assert any(c.at_min == 30 and c.every_min == 15 for c in checkpoints)


def test_maryland_30_minutes_is_a_hard_cap() -> None:
    limit = load_profile("us-md").time_limit
    assert limit.default_min == 30 and limit.hard_cap


def test_north_colonie_extends_ny_and_calls_parents_at_20() -> None:
    profile = load_profile("us-ny-north-colonie")
    parent = load_profile("us-ny")
    assert profile.extends == "us-ny"
    assert profile.time_limit.default_min == 20
    assert profile.parent_notification.deadline is NotificationDeadline.WITHIN_SCHOOL_DAYS
    assert profile.parent_notification.school_days == 1
    assert any(c.at_min == 20 for c in profile.checkpoints)
    assert profile.environment == parent.environment, "inherited from us-ny"
    assert parent.parent_notification.deadline is NotificationDeadline.END_OF_SCHOOL_DAY


def test_massachusetts_prohibits_seclusion() -> None:
    assert load_profile("us-ma").seclusion_allowed is False


def test_alberta_notifies_parents_immediately() -> None:
    assert load_profile("ca-ab").parent_notification.deadline is NotificationDeadline.IMMEDIATELY


def test_minnesota_reporting_dates_and_ten_day_rule() -> None:
    reporting = load_profile("us-mn").reporting
    assert reporting.quarterly_due == ["01-15", "04-15", "07-15", "10-15"]
    assert reporting.frequent_use_school_days == 10


def test_room_rules_maine_and_tennessee() -> None:
    assert load_profile("us-me").room.min_area_sq_ft == 60
    assert load_profile("us-me").room.observation_window
    tn = load_profile("us-tn").room
    assert tn.min_area_sq_ft == 40 and tn.lock_capable_forbidden


def test_defaults_where_sources_say_adequate() -> None:
    env = load_profile("default").environment
    assert (env.temperature_c.min, env.temperature_c.max, env.lux_min, env.co2_max_ppm) == (
        18,
        27,
        150,
        1000,
    )
    assert load_profile("default").monitoring.lapse_after_s == 10
    assert load_profile("default").time_limit.warning_fraction == 0.8


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"known profiles: .*us-mi"):
        load_profile("us-xx")


def test_policies_list_and_show() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["policies", "list"])
    assert listed.exit_code == 0
    assert {line.split()[0] for line in listed.output.splitlines()} == set(available_profiles())
    shown = runner.invoke(main, ["policies", "show", "us-mi"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["time_limit"]["by_band"] == {
        "elementary": 15.0,
        "secondary": 20.0,
    }
    missing = runner.invoke(main, ["policies", "show", "nowhere"])
    assert missing.exit_code == 1 and "unknown policy profile" in missing.output


def test_no_profile_may_allow_locking() -> None:
    data = load_profile("default").model_dump()
    with pytest.raises(ValidationError, match="locking_allowed must be false"):
        PolicyProfile.model_validate(data | {"locking_allowed": True})


def test_a_repeat_window_needs_a_checkpoint_of_the_profile() -> None:
    data = load_profile("us-il").model_dump()
    reporting = data["reporting"]
    with pytest.raises(ValidationError, match="go together"):
        PolicyProfile.model_validate(data | {"reporting": reporting | {"repeat_checkpoint": None}})
    with pytest.raises(ValidationError, match="is not one of the profile's checkpoints"):
        PolicyProfile.model_validate(data | {"reporting": reporting | {"repeat_checkpoint": "x"}})
    assert load_profile("us-il").reporting.repeat_checkpoint == "written_evaluation"


# ------------------------------------------------- the field table of docs/policies.md

POLICIES_DOC = Path(__file__).resolve().parents[1] / "docs" / "policies.md"
TESTS = Path(__file__).resolve().parent
#: Fields nothing reads yet, each with its reason in the table (issue 13): adding one here
#: is a decision, not an accident.
KNOWN_DEFECTS = {
    "time_limit.plan_maximum_applies",
    "environment.reference_delta_c",
}


def _model_inside(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model an annotation holds (through X | None, list[X]), and whether listed."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in get_args(annotation):
        inner, listed = _model_inside(arg)
        if inner is not None:
            return inner, listed or get_origin(annotation) is list
    return None, False


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every leaf field of ``model`` as a dotted path (``checkpoints[].at_min``)."""
    found = []
    for name, info in model.model_fields.items():
        inner, listed = _model_inside(info.annotation)
        path = prefix + name
        if inner is None:
            found.append(path)
        else:
            found += field_paths(inner, path + ("[]" if listed else "") + ".")
    return found


def table_rows() -> dict[str, tuple[str, str]]:
    """field -> (code cell, test cell) from the table in docs/policies.md."""
    text = POLICIES_DOC.read_text(encoding="utf-8")
    section = text.split("## Every field, and what makes it act", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{name} is listed twice"
        rows[name] = (cells[2], cells[3])
    return rows


def test_the_policies_doc_lists_every_profile_field() -> None:
    rows = table_rows()
    fields = field_paths(PolicyProfile)
    assert "checkpoints[].at_min" in fields and "environment.temperature_c.max" in fields
    assert sorted(set(fields) - set(rows)) == [], "fields missing from docs/policies.md"
    assert sorted(set(rows) - set(fields)) == [], "rows naming no field of the model"


def test_each_row_names_code_and_tests_that_exist() -> None:
    for name, (code, tests) in table_rows().items():
        if code.startswith("**defect**"):
            assert name in KNOWN_DEFECTS, f"{name}: a new defect; make it act or list it here"
            continue
        assert name not in KNOWN_DEFECTS, f"{name} acts now: take it off KNOWN_DEFECTS"
        refs = re.findall(r"`([\w.]+):([\w.]+)`", code)
        assert refs, f"{name}: no module:function in {code!r}"
        for module, qualname in refs:
            target: Any = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)  # AttributeError names what is wrong
        cited = re.findall(r"`(tests/[\w/.-]+?)(?:::(\w+))?`", tests)
        assert cited, f"{name}: no test in {tests!r}"
        for path, function in cited:
            file = TESTS.parent / path
            assert file.exists(), f"{name}: {path} does not exist"
            if function:
                assert re.search(rf"^def {function}\(", file.read_text(), re.M), (
                    f"{name}: no {function} in {path}"
                )


def test_room_requirements_in_words() -> None:
    """room.* are not sensed: the environment report lists them for the district to confirm."""
    assert load_profile("us-tn").room.in_words() == [
        "floor area at least 40 sq ft",
        "incapable of being locked",
    ]
    arkansas_like = RoomRequirements(min_side_ft=4, max_side_ft=6, annual_inspection=True)
    assert arkansas_like.in_words() == [
        "no side shorter than 4 ft",
        "no side longer than 6 ft",
        "an annual fire and safety inspection",
    ]
    assert load_profile("default").room.in_words() == []
