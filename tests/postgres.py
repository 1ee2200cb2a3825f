"""A real PostgreSQL for the tests: a throwaway cluster that the test run owns.

``postgres_url`` (session) runs ``initdb`` into a temporary folder, starts the
server with ``pg_ctl`` on a free loopback port (its Unix socket in that folder
too), polls a connection until the server takes it, creates the database
``roomwatch_test`` and yields its SQLAlchemy URL; at the end it stops the server
and removes the folder. ``postgres_database`` (function) gives each test a
fresh, empty database of its own on that cluster, dropped after the test.

The server comes from the machine: Debian's ``/usr/lib/postgresql/<major>/bin``
(the newest major) or else ``initdb``/``pg_ctl`` on ``PATH``. .ci/run installs
it; a missing server fails the tests, it never skips them. PostgreSQL refuses to
run as root, so under root (CI) the cluster belongs to the ``postgres`` system
user and ``initdb``/``pg_ctl`` run as that user (the temporary folder must then be
reachable by it: the default /tmp is); otherwise as the current user.

The server's time zone is deliberately not UTC (``SERVER_TIMEZONE``), so code
that only works because the server happens to be in UTC fails here.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import URL, make_url

from waiting import wait_until

if TYPE_CHECKING:
    import psycopg

INSTALL_HINT = "run `apt-get install postgresql` (.ci/run does)"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "roomwatch"
DATABASE = "roomwatch_test"
#: Half-hour offset and daylight saving time: a local time is never mistaken for UTC.
SERVER_TIMEZONE = "America/St_Johns"
START_TIMEOUT = 60.0
_START_ATTEMPTS = 3  # a new port each time, in case another process took the free one

_database_numbers = itertools.count(1)


def server_binaries() -> tuple[Path, Path]:
    """``initdb`` and ``pg_ctl``: Debian's newest major version first, then ``PATH``."""
    debian: list[tuple[int, Path]] = []
    for initdb in DEBIAN_ROOT.glob("*/bin/initdb"):
        major = initdb.parent.parent.name
        if major.isdigit() and os.access(initdb.parent / "pg_ctl", os.X_OK):
            debian.append((int(major), initdb.parent))
    if debian:
        bindir = max(debian)[1]
        return bindir / "initdb", bindir / "pg_ctl"
    initdb_path, pg_ctl_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb_path and pg_ctl_path:
        return Path(initdb_path), Path(pg_ctl_path)
    pytest.fail(
        f"PostgreSQL's server binaries (initdb, pg_ctl) are not installed: {INSTALL_HINT}. "
        f"Looked in {DEBIAN_ROOT}/<major>/bin and on PATH.",
        pytrace=False,
    )


def _run_as() -> tuple[list[str], int | None]:
    """The command prefix that runs a server program as the cluster's owner, and its uid."""
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "PostgreSQL cannot run as root and there is no `postgres` system user to run it "
            f"as: {INSTALL_HINT} (the package creates the user).",
            pytrace=False,
        )
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", "postgres", "--"], owner.pw_uid
    if setpriv := shutil.which("setpriv"):
        return [
            setpriv,
            f"--reuid={owner.pw_uid}",
            f"--regid={owner.pw_gid}",
            "--init-groups",
            "--",
        ], owner.pw_uid
    pytest.fail("running as root needs `runuser` or `setpriv` (util-linux) to drop to `postgres`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _connect(url: URL, dbname: str, timeout: float = 5) -> psycopg.Connection[Any]:
    import psycopg  # only here: the driver is needed for PostgreSQL tests alone

    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=dbname,
        connect_timeout=max(1, round(timeout)),
        autocommit=True,
    )


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


class _Cluster:
    """One initdb'd data folder and the server running on it."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = server_binaries()
        self.prefix, self.owner_uid = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="roomwatch-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.password = secrets.token_urlsafe(24)
        self.port = 0
        self.started = False

    def _call(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a server program as the cluster's owner."""
        return subprocess.run(
            [*self.prefix, *map(str, args)],
            cwd=self.folder,  # the owner may not be able to enter the caller's directory
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 10,
            check=False,
        )

    def _failure(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        return (
            f"PostgreSQL {what} failed ({result.returncode}): {' '.join(result.args)}\n"
            f"{result.stdout}{result.stderr}\nserver log ({self.log}):\n{_tail(self.log)}"
        )

    def create(self) -> None:
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.owner_uid is not None:
            os.chown(self.folder, self.owner_uid, -1)
            os.chown(pwfile, self.owner_uid, -1)
        result = self._call(
            self.initdb,
            "--pgdata",
            self.data,
            "--username",
            SUPERUSER,
            "--pwfile",
            pwfile,
            "--auth-local=trust",  # the socket is in our 0700 folder: only the owner gets in
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        if result.returncode != 0:
            pytest.fail(self._failure("initdb", result), pytrace=False)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": _quote(str(self.folder)),
            "timezone": _quote(SERVER_TIMEZONE),
            "log_timezone": "'UTC'",
            # Throwaway data: no need to survive a power cut, so no waiting on the disk.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# roomwatch tests\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def url(self, database: str) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def start(self) -> None:
        """Start the server on a free port; another port if the chosen one got taken meanwhile."""
        for _attempt in range(_START_ATTEMPTS):
            self.port = free_port()
            self.started = True
            # pg_ctl --wait returns once the server says it is ready, and at once with an
            # error if it exits instead (a port taken since free_port(), a bad setting).
            result = self._call(
                self.pg_ctl,
                "start",
                "--pgdata",
                self.data,
                "--log",
                self.log,
                "--wait",
                f"--timeout={START_TIMEOUT:.0f}",
                "-o",
                f"-p {self.port}",
            )
            if result.returncode == 0:
                self._wait_until_ready()
                return
            self.stop()
        pytest.fail(self._failure("pg_ctl start", result), pytrace=False)

    def _wait_until_ready(self) -> None:
        """Poll a connection over TCP, as the tests will connect, until the server takes it."""
        import psycopg

        url = self.url("postgres")
        last_error: list[Exception] = []

        def accepts() -> bool:
            try:
                with _connect(url, "postgres", timeout=2) as connection:
                    connection.execute("select 1")
                    return True
            except psycopg.OperationalError as e:
                last_error[:] = [e]
                return False

        if not wait_until(accepts, START_TIMEOUT, interval=0.02):
            pytest.fail(
                f"PostgreSQL did not accept connections on port {self.port} within "
                f"{START_TIMEOUT:.0f} s: {last_error[0] if last_error else ''}\n"
                f"server log:\n{_tail(self.log)}",
                pytrace=False,
            )

    def stop(self) -> None:
        if not self.started:
            return
        for mode in ("fast", "immediate"):
            result = self._call(self.pg_ctl, "stop", "--pgdata", self.data, "--mode", mode)
            if result.returncode == 0 or not (self.data / "postmaster.pid").exists():
                break
        self.started = False

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of ``roomwatch_test`` on a PostgreSQL cluster owned by this run."""
    if importlib.util.find_spec("psycopg") is None:
        pytest.fail(
            "the PostgreSQL driver is missing: pip install -e '.[test]' (psycopg[binary])",
            pytrace=False,
        )
    cluster = _Cluster()
    try:
        cluster.create()
        cluster.start()
        with _connect(cluster.url("postgres"), "postgres") as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield cluster.url(DATABASE).render_as_string(hide_password=False)
    finally:
        cluster.stop()
        cluster.remove()


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (``test_<n>`` on the session's cluster)."""
    url = make_url(postgres_url)
    name = _identifier(f"test_{next(_database_numbers)}")
    with _connect(url, "postgres") as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with _connect(url, "postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file (in a folder still to be made) or a PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'deep' / 'c.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url
