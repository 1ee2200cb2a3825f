"""``roomwatch policies``: the policy profiles Roomwatch knows."""

from __future__ import annotations

import json

import click

from roomwatch.core.policy import ProfileError, available_profiles, load_profile


@click.group()
def policies() -> None:
    """The policy profiles Roomwatch knows."""


@policies.command("list")
def policies_list() -> None:
    """One line per profile: id, limit, parent notification, jurisdiction."""
    for profile_id in available_profiles():
        p = load_profile(profile_id)
        limit = p.time_limit
        if limit.by_band:
            minutes = "/".join(f"{v:g}" for v in limit.by_band.values()) + " min"
        elif limit.default_min:
            minutes = f"{limit.default_min:g} min"
        else:
            minutes = "plan"
        note = "" if p.seclusion_allowed else "  (seclusion prohibited)"
        click.echo(
            f"{p.id:<22} {minutes:<10} {p.parent_notification.deadline.value:<20} "
            f"{p.jurisdiction}{note}"
        )


@policies.command("show")
@click.argument("profile_id")
def policies_show(profile_id: str) -> None:
    """The fully resolved profile PROFILE_ID, as JSON."""
    try:
        profile = load_profile(profile_id)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(profile.model_dump(mode="json"), indent=2, ensure_ascii=False))
