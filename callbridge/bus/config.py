"""Settings of the MQTT side (the ``mqtt:`` section of the service settings)."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from callbridge.bus.principals import KeyEntry, Role, load_keys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_secret(value: SecretStr | None, file: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    return None


class BusSettings(BaseModel):
    """Broker connection, outbox and command options. Secrets come from env or ``*_file`` paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    site: str = "default"
    #: MQTT client id of the publisher (commands use ``<client_id>-cmd``); default ``callbridge-<site>``.
    client_id: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive: int = Field(30, ge=5)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: Skip host name verification (lab only).
    tls_insecure: bool = False

    outbox_path: Path = Path("callbridge-outbox.sqlite3")
    outbox_max_rows: int = Field(100_000, ge=10)
    #: QoS 1 publishes awaiting their PUBACK at once (64 measured best with aiomqtt 2.5.1).
    in_flight: int = Field(64, ge=1, le=1024)
    #: The same for the batched fast path (:mod:`callbridge.bus.fastpath`), which costs nothing per
    #: message in flight: a wide window lets one event-loop iteration send everything the outbox holds
    #: (PUBACKs are read once per iteration, so the window caps the rate while the AMI side is busy).
    #: Never above the broker's MQTT 5 Receive Maximum (CONNACK), which is honoured when it sends one.
    pipelined_in_flight: int = Field(2048, ge=1, le=65535)
    #: Drops of the connection with the same row the oldest in flight (sent alone after the first) before
    #: that row becomes a dead letter (see :mod:`callbridge.bus.delivery`).
    dead_letter_strikes: int = Field(3, ge=1, le=100)
    #: ``/readyz`` says not ready while rows wait and no PUBACK came for this long (seconds).
    delivery_stall_s: float = Field(30.0, gt=0)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)

    #: Consume commands through ``$share/<group>/…`` so several daemons share them.
    command_shared_group: str | None = None
    #: Several daemons subscribe to the same command topics without a group: stay silent on
    #: ``not_on_this_pbx`` so the owning daemon's reply is the only one.
    command_broadcast: bool = False
    #: Shared secret for HMAC-SHA256 command signatures.
    command_secret: SecretStr | None = None
    command_secret_file: Path | None = None
    #: Longest wait for the execution result of an accepted command (then ``failed: outcome_timeout``).
    command_outcome_timeout_s: float = Field(60.0, gt=0)
    #: Roles the shared secret grants (it names no sender; prefer per-sender keys).
    command_secret_roles: tuple[Role, ...] = ("agent",)
    #: Per-sender command keys: a secret YAML/JSON file (see :mod:`callbridge.bus.principals`).
    command_keys_file: Path | None = None
    #: Refuse unsigned commands; None (the default) = refuse them unless ``host`` is a loopback address.
    command_require_signature: bool | None = None

    def resolved_client_id(self) -> str:
        return self.client_id or f"callbridge-{self.site}"

    def resolved_password(self) -> str | None:
        return _read_secret(self.password, self.password_file)

    def signatures_required(self) -> bool:
        """Unsigned commands are refused by default whenever the broker is not on loopback."""
        if self.command_require_signature is not None:
            return self.command_require_signature
        return not _is_loopback(self.host)

    def resolved_command_keys(self) -> Mapping[str, KeyEntry]:
        return load_keys(self.command_keys_file) if self.command_keys_file is not None else {}

    def resolved_command_secret(self) -> bytes | None:
        secret = _read_secret(self.command_secret, self.command_secret_file)
        return secret.encode() if secret else None

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        if self.tls_cert_file:
            ctx.load_cert_chain(str(self.tls_cert_file), str(self.tls_key_file) if self.tls_key_file else None)
        if self.tls_insecure:
            ctx.check_hostname = False
        return ctx
