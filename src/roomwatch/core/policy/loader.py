"""Load policy profiles from the package's ``profiles/`` folder, resolving ``extends``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from roomwatch.core import yaml_lines
from roomwatch.core.policy.model import PolicyProfile

_PACKAGE = "roomwatch.core.policy"


class ProfileError(ValueError):
    """A profile that is missing, malformed or extends itself."""


def available_profiles() -> list[str]:
    """Ids of every bundled profile, sorted."""
    folder = resources.files(_PACKAGE).joinpath("profiles")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override ``base`` key by key; nested mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _raw(profile_id: str) -> yaml_lines.LinedDocument:
    if profile_id not in available_profiles():
        known = ", ".join(available_profiles())
        raise ProfileError(f"unknown policy profile {profile_id!r}; known profiles: {known}")
    text = resources.files(_PACKAGE).joinpath("profiles", f"{profile_id}.yaml").read_text("utf-8")
    try:
        return yaml_lines.parse(text)
    except yaml_lines.YamlSyntaxError as exc:
        raise ProfileError(f"profile {profile_id} (line {exc.line}): {exc}") from None


def _resolved(profile_id: str, chain: tuple[str, ...]) -> dict[str, Any]:
    if profile_id in chain:
        raise ProfileError(
            f"profile {profile_id!r} extends itself: {' -> '.join((*chain, profile_id))}"
        )
    data: dict[str, Any] = _raw(profile_id).data
    if data.get("id") != profile_id:
        raise ProfileError(f"profile file {profile_id}.yaml says id {data.get('id')!r}")
    parent = data.get("extends")
    if not parent:
        return data
    base = _resolved(parent, (*chain, profile_id))
    # What a child does not restate about where its rules come from is not inherited.
    base = {
        k: v for k, v in base.items() if k not in ("id", "name", "jurisdiction", "sources", "notes")
    }
    return _merge(base, data)


@cache
def load_profile(profile_id: str) -> PolicyProfile:
    """The fully resolved profile ``profile_id`` (cached: profiles are immutable)."""
    data = _resolved(profile_id, ())
    try:
        return PolicyProfile.model_validate(data)
    except ValidationError as exc:
        doc = _raw(profile_id)
        listed = "; ".join(str(p) for p in yaml_lines.problems(exc, doc))
        raise ProfileError(f"profile {profile_id}: {listed}") from None
