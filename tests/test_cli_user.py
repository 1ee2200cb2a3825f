"""``roomwatch user add``: the first admin is made on the collector's machine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from roomwatch.cli.main import main
from roomwatch.collector import accounts, audit
from roomwatch.collector.database import make_engine
from roomwatch.web.auth import sign_in


def test_a_user_added_on_the_command_line_can_sign_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    added = runner.invoke(
        main,
        [
            "user",
            "add",
            "ada",
            "--role",
            "admin",
            "--name",
            "Ada L",
            "--db",
            url,
            "--password-stdin",
        ],
        input="a long enough secret\n",
    )
    assert added.exit_code == 0, added.output
    assert "added admin 'ada'" in added.output
    engine = make_engine(url)
    try:
        user = accounts.user_named(engine, "ada")
        assert user is not None and user.role == "admin" and user.display_name == "Ada L"
        with engine.connect() as connection:
            (stored_hash,) = connection.execute(
                text("select password_hash from app_user where username = 'ada'")
            ).one()
        assert stored_hash and "a long enough secret" not in stored_hash
        assert sign_in(engine, "ada", "a long enough secret", 1, datetime.now(UTC)) is not None
        assert [e.action for e in audit.entries(engine)] == ["user.created"]
    finally:
        engine.dispose()


def test_a_taken_name_or_a_short_password_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    args = ["user", "add", "sam", "--db", url, "--password-stdin"]
    assert runner.invoke(main, args, input="a long enough secret\n").exit_code == 0
    again = runner.invoke(main, args, input="another long secret\n")
    assert again.exit_code == 1 and "a user named 'sam' exists" in again.output
    short = runner.invoke(
        main, ["user", "add", "kim", "--db", url, "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
