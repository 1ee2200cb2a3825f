"""Certificates for TLS tests, made with openssl: a CA, and a server certificate for
127.0.0.1 signed by it (or by another CA, or for another name, to test what fails)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


def _ca(folder: Path, name: str) -> None:
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"),
    )  # fmt: skip


def make_pki(folder: Path, server_ip: str = "127.0.0.1") -> Pki:
    """A CA in ``folder`` and a server certificate for ``server_ip`` that it signed."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "Roomwatch test CA")
    run(
        "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={server_ip}",
        "-keyout", str(folder / "server.key"), "-out", str(folder / "server.csr"),
    )  # fmt: skip
    (folder / "san.ext").write_text(f"subjectAltName=IP:{server_ip}\n")
    run(
        "openssl", "x509", "-req", "-in", str(folder / "server.csr"),
        "-CA", str(folder / "ca.pem"), "-CAkey", str(folder / "ca.key"), "-CAcreateserial",
        "-days", "2", "-extfile", str(folder / "san.ext"), "-out", str(folder / "server.pem"),
    )  # fmt: skip
    return Pki(folder)


def other_ca(folder: Path) -> Path:
    """A CA that signed nothing the broker shows: its ca.pem."""
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "Some other CA")
    return folder / "ca.pem"
