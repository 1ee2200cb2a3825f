"""The MQTT connection settings, shared by the agent's and the collector's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(
        None,
        description="CA bundle that signed the broker's certificate; "
        "null = the system's trust store.",
    )
    cert_file: Path | None = Field(None, description="Client certificate, for mutual TLS.")
    key_file: Path | None = Field(None, description="Client private key, for mutual TLS.")
    insecure_skip_verify: bool = Field(
        False,
        description="Never in production: skips the "
        "broker's hostname check (for a lab broker's IP).",
    )

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttSettings(BaseModel):
    """Where the broker is and how to talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="1883 plain, 8883 for TLS.")
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT version: 3.1.1 (default; the embedded broker speaks only it) or 5.",
    )
    keepalive_s: int = Field(
        15, ge=5, le=600, description="Keepalive; the last will fires within about 1.5x this."
    )
    tls: TlsSettings | None = Field(None, description="TLS settings; null = plain TCP.")
    username: str | None = Field(None, description="Username, when the broker requires one.")
    password_file: Path | None = Field(
        None, description="File holding the password (never the password itself in the config)."
    )
    client_id: str | None = Field(
        None, max_length=64, description="Client id; null = derived from the program and room."
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: object) -> object:
        return "5" if value == 5 else value  # YAML reads `protocol: 5` as a number

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSettings:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        return self

    def with_broker_url(self, url: str) -> MqttSettings:
        """These settings, pointed at ``mqtt://HOST:PORT`` or ``mqtts://HOST:PORT``."""
        host, port, tls = parse_broker_url(url)
        update: dict[str, object] = {"host": host, "port": port}
        if tls and self.tls is None:
            update["tls"] = TlsSettings()
        if not tls:
            update["tls"] = None
        return self.model_copy(update=update)


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host:1883`` -> (host, port, tls). ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(
            f"broker URL {url!r}: only mqtt[s]://HOST[:PORT] is accepted "
            "(credentials belong in the config's password_file)"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"broker URL {url!r} has a bad port") from None
    return parts.hostname, port, tls
