"""The `[mqtt]` and `[web]` tables: the gateway's services on the home network.

Imported (and re-exported) by config.py; the key names are the contract of DESIGN.md section 5.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from v2g_gateway.config_base import CredentialName, Section, at_most_one


class MqttSection(Section):
    enabled: bool = True
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    credential: CredentialName | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_credential: CredentialName | None = None  # the client key as a credential
    topic_prefix: str = Field(default="v2g", pattern=r"^[^#+]+$")
    homeassistant_discovery: bool = True
    discovery_prefix: str = "homeassistant"
    min_publish_interval_s: float = Field(default=1.0, ge=0)
    # Bigger payloads are refused unread; a command gets a reply naming the size.
    max_payload_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # Non-empty: a command must carry an MQTT 5 user property client_id or username with one of
    # these values. Defence in depth only: the broker's ACL is the real control (docs/mqtt.md).
    command_clients: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()

    @model_validator(mode="after")
    def _one_secret(self) -> MqttSection:
        at_most_one(self, "password", "password_file", "credential")
        at_most_one(self, "key_file", "key_credential")
        if self.command_clients and self.protocol != "5":
            raise ValueError(
                'command_clients needs protocol = "5" (MQTT 3.1.1 has no user properties)'
            )
        return self


def is_loopback_host(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebSection(Section):
    """The local web app (v2g_gateway/web). Absent table: the web app is off (docs/web.md)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    password: str | None = Field(default=None, min_length=8, max_length=200, repr=False)
    password_file: Path | None = None
    credential: CredentialName | None = None  # a file in the credentials folder (credentials.py)
    tls: bool | None = None  # None: HTTPS when [ocpp] has tls_cert_file and tls_key_file
    session_days: float = Field(default=30.0, gt=0, le=365)
    live_interval_s: float = Field(default=1.0, ge=0, le=60)  # at most one live update per this

    @model_validator(mode="after")
    def _secret(self) -> WebSection:
        given = [x for x in (self.password, self.password_file, self.credential) if x is not None]
        if len(given) > 1:
            raise ValueError("give only one of password, password_file, credential")
        if self.enabled and not given and not is_loopback_host(self.host):
            raise ValueError(
                f"the web app listens on {self.host!r}: give password, password_file or "
                "credential (only a loopback host such as 127.0.0.1 may go without)"
            )
        return self
