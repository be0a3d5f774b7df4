"""Service settings: ``config/callbridge.yaml`` + environment overrides, validated like dialplans.

Environment: ``CALLBRIDGE_<SECTION>__<KEY>`` overrides one key (e.g. ``CALLBRIDGE_AMI__PORT=5039``),
``CALLBRIDGE_SITE_ID`` the site. Secrets never live in a settings file: they come from an env var
(``CALLBRIDGE_AMI_SECRET``, ``CALLBRIDGE_MQTT_PASSWORD``, ``CALLBRIDGE_COMMAND_SECRET``,
``CALLBRIDGE_WEB_TOKEN``, ``CALLBRIDGE_POSTGRES_DSN``) or from a file named by ``*_file`` in the settings or
by the same env var with ``_FILE`` appended. A secret written into the YAML itself is refused.
The ``mqtt:`` section is :class:`callbridge.bus.config.BusSettings`; ``mqtt.url`` (``mqtt[s]://[user@]host[:port]``)
is accepted as a shorthand for host/port/tls/username.
A relative path written in a settings file is resolved against that file's folder (see
:func:`_resolve_relative_paths`); a relative path from the environment or a default, against the working
directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from callbridge.bus.config import BusSettings
from callbridge.bus.idents import TOPIC_LEVEL
from callbridge.dialplan.yamlsource import Document, PathKey, Pos, parse_yaml, read_text, validation_problems
from callbridge.errors import ConfigError, Problem, UnreadableConfigError

ENV_PREFIX = "CALLBRIDGE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "callbridge"
    secret: SecretStr | None = None
    secret_file: Path | None = None
    auth: Literal["plain", "md5"] = "md5"
    ping_interval: float = Field(default=10.0, gt=0)
    ping_timeout: float = Field(default=5.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    action_timeout: float = Field(default=10.0, gt=0)

    def secret_value(self) -> str:
        """The AMI secret; raises ``ConfigError`` when neither env nor file provided one."""
        if self.secret is None:
            raise ConfigError(
                [Problem("env", 0, 0, "ami.secret", "no AMI secret: set CALLBRIDGE_AMI_SECRET or ami.secret_file")]
            )
        return self.secret.get_secret_value()


class LogSettings(_Section):
    format: Literal["console", "json"] = "console"
    level: Literal["debug", "info", "warning", "error"] = "info"


class DialplanSettings(_Section):
    path: Path = Path("dialplans")


class StoreSettings(_Section):
    path: Path = Path("callbridge-records.sqlite3")
    postgres_dsn: SecretStr | None = None
    postgres_dsn_file: Path | None = None


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None


class CentresSettings(_Section):
    """Two centres, two PBXs (issue 21, docs/two-centres.md): the other centre's site over a shared broker."""

    #: The other centre's MQTT site id (its ``mqtt.site``); None: no link (one centre).
    peer_site: str | None = Field(default=None, pattern=TOPIC_LEVEL)
    #: Seconds between the other centre's ``transfer.requested`` and the call for a caller-number match.
    window_s: float = Field(default=120.0, gt=0, le=3600)


class Settings(_Section):
    site_id: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    ami: AmiSettings = AmiSettings()
    mqtt: BusSettings = Field(default_factory=lambda: BusSettings.model_validate({}))
    log: LogSettings = LogSettings()
    dialplan: DialplanSettings = DialplanSettings()
    store: StoreSettings = StoreSettings()
    web: WebSettings = WebSettings()
    centres: CentresSettings = CentresSettings()

    @model_validator(mode="after")
    def _peer_is_another_site(self) -> Settings:
        if self.centres.peer_site is not None and self.centres.peer_site == self.mqtt.site:
            raise ValueError(f"centres.peer_site {self.centres.peer_site!r} is this centre's own mqtt.site")
        return self

    @model_validator(mode="before")
    @classmethod
    def _site_for_mqtt(cls, data: Any) -> Any:
        # one site id for the whole service: the MQTT topics use it unless mqtt.site says otherwise
        if isinstance(data, dict) and "site_id" in data:
            mqtt = data.get("mqtt")
            if mqtt is None:
                data = {**data, "mqtt": {"site": data["site_id"]}}
            elif isinstance(mqtt, dict) and "site" not in mqtt:
                data = {**data, "mqtt": {**mqtt, "site": data["site_id"]}}
        return data


#: (section, key) of each secret → (env var holding it, settings key naming a file holding it)
SECRETS: dict[tuple[str, str], tuple[str, str]] = {
    ("ami", "secret"): ("CALLBRIDGE_AMI_SECRET", "secret_file"),
    ("mqtt", "password"): ("CALLBRIDGE_MQTT_PASSWORD", "password_file"),
    ("mqtt", "command_secret"): ("CALLBRIDGE_COMMAND_SECRET", "command_secret_file"),
    ("web", "token"): ("CALLBRIDGE_WEB_TOKEN", "token_file"),
    ("store", "postgres_dsn"): ("CALLBRIDGE_POSTGRES_DSN", "postgres_dsn_file"),
}
_TOP_LEVEL_ENV = {"CALLBRIDGE_SITE_ID": "site_id"}


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read *path* (defaults only when ``None``), apply *env* (default ``os.environ``), resolve secrets.

    Raises ``ConfigError`` (located problems) or ``UnreadableConfigError``.
    """
    env = os.environ if env is None else env
    if path is None:
        doc = Document({}, {(): Pos("(defaults)", 0, 0, 0, 0)})
    else:
        if not Path(path).is_file():
            raise UnreadableConfigError(f"{path}: no such settings file")
        parsed, problems = parse_yaml(read_text(Path(path)), str(path))
        if parsed is None or problems:
            raise ConfigError(problems)
        doc = parsed
    problems = _refuse_inline_secrets(doc)
    problems += _apply_env(doc, env)
    problems += _expand_mqtt_url(doc)
    if problems:
        raise ConfigError(problems)
    try:
        settings = Settings.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc, Settings)) from exc
    if path is not None:
        settings = _resolve_relative_paths(settings, doc, str(path))
    return _resolve_secret_files(settings, doc)


def _resolve_relative_paths(settings: Settings, doc: Document, source: str) -> Settings:
    """A relative path written in the settings file means a path beside that file, wherever the daemon runs.

    The image and the systemd unit run in ``/var/lib/callbridge`` with the settings in ``/etc/callbridge``:
    ``dialplan.path: dialplans`` must name ``/etc/callbridge/dialplans``. Paths from env overrides and the
    defaults stay relative to the working directory, like any path typed on a command line.
    """
    # lexical (os.path.abspath, not resolve()): a symlinked settings file keeps the folder it is named in
    base = Path(os.path.abspath(source)).parent  # noqa: PTH100
    updates: dict[str, dict[str, Path]] = {}
    for section in type(settings).model_fields:
        block = getattr(settings, section)
        if not isinstance(block, BaseModel):
            continue
        for key in type(block).model_fields:
            value = getattr(block, key)
            pos = doc.positions.get((section, key))
            if isinstance(value, Path) and not value.is_absolute() and pos is not None and pos.file == source:
                updates.setdefault(section, {})[key] = base / value
    for section, values in updates.items():
        settings = settings.model_copy(update={section: getattr(settings, section).model_copy(update=values)})
    return settings


def _refuse_inline_secrets(doc: Document) -> list[Problem]:
    problems = []
    for (section, key), (env_name, file_key) in SECRETS.items():
        block = doc.data.get(section)
        if isinstance(block, dict) and key in block:
            problems.append(
                doc.problem(
                    (section, key),
                    f"secrets are not read from settings files; set env {env_name} or {section}.{file_key}",
                    at_key=True,
                )
            )
    return problems


def _expand_mqtt_url(doc: Document) -> list[Problem]:
    """``mqtt.url: mqtts://user@broker:8883`` → host, port, tls, username (a password in a URL is refused)."""
    mqtt = doc.data.get("mqtt")
    if not isinstance(mqtt, dict) or "url" not in mqtt:
        return []
    raw = mqtt.pop("url")
    url = urlsplit(str(raw))
    where = ("mqtt", "url")
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        return [doc.problem(where, f"found {raw!r}; expected mqtt://host[:port] or mqtts://host[:port]")]
    if url.password:
        return [doc.problem(where, "a password in the URL is refused; use CALLBRIDGE_MQTT_PASSWORD or password_file")]
    try:
        port = url.port
    except ValueError:
        return [doc.problem(where, f"found {raw!r}; the port must be a number 1-65535")]
    tls = url.scheme == "mqtts"
    mqtt.update({"host": url.hostname, "port": port or (8883 if tls else 1883), "tls": tls})
    if url.username:
        mqtt["username"] = url.username
    for key in ("host", "port", "tls", "username"):
        doc.positions.setdefault(("mqtt", key), doc.positions[where])
    return []


def _apply_env(doc: Document, env: Mapping[str, str]) -> list[Problem]:
    """Write env overrides into the document, remembering them as positions ``env NAME``."""
    problems: list[Problem] = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = _env_path(name)
        if isinstance(path, Problem):
            problems.append(path)
        elif path is not None:  # None: other CALLBRIDGE_* variables (e.g. CALLBRIDGE_TRACES) are other tools'
            problems.extend(_set_from_env(doc, name, path, value))
    return problems


def _env_path(name: str) -> PathKey | Problem | None:
    """Where ``CALLBRIDGE_…`` variable ``name`` writes in the document (a problem for a secret given inline)."""
    if name in _TOP_LEVEL_ENV:
        return (_TOP_LEVEL_ENV[name],)
    if "__" in name:
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        path = (section.lower(), key.lower())
        if path in SECRETS:
            return Problem(f"env {name}", 0, 0, ".".join(path), f"use env {SECRETS[path][0]}")
        return path
    found: PathKey | None = None
    for (section, key), (env_name, file_key) in SECRETS.items():
        if name == env_name:
            found = (section, key)
        elif name == env_name + "_FILE":
            found = (section, file_key)
    return found


def _set_from_env(doc: Document, name: str, path: PathKey, value: str) -> list[Problem]:
    target: Any = doc.data
    for part in path[:-1]:
        existing = target.get(part)
        if existing is None:
            existing = target[part] = {}
        if not isinstance(existing, dict):
            return [Problem(f"env {name}", 0, 0, ".".join(map(str, path)), f"{part} is not a section")]
        target = existing
    target[path[-1]] = value
    doc.positions[path] = Pos(f"env {name}", 0, 0, 0, 0)
    return []


def _resolve_secret_files(settings: Settings, doc: Document) -> Settings:
    """Read ``*_file`` secrets now so a missing file is reported at start, where its key was written."""
    problems: list[Problem] = []
    updates: dict[str, dict[str, Any]] = {}
    for (section, key), (_env, file_key) in SECRETS.items():
        block = getattr(settings, section)
        file = getattr(block, file_key)
        if file is None or getattr(block, key) is not None:
            continue  # the env var wins over the file
        try:
            secret = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(doc.problem((section, file_key), f"cannot read secret file {file}: {exc.strerror or exc}"))
            continue
        if not secret:
            problems.append(doc.problem((section, file_key), f"secret file {file} is empty"))
            continue
        updates.setdefault(section, {})[key] = SecretStr(secret)
    if problems:
        raise ConfigError(problems)
    for section, values in updates.items():
        settings = settings.model_copy(update={section: getattr(settings, section).model_copy(update=values)})
    return settings
