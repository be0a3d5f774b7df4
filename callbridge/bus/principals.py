"""Who may send which command: roles, per-hotline scope and command keys (pure).

Every command carries a ``role`` (``agent`` when absent). What a role may do (:data:`VERB_ROLES`):
``set_mode``, ``reload`` and ``nuisance_release`` need ``supervisor`` or ``ops`` *and* a site-wide scope
(a mode applies to every hotline, the nuisance window counts calls to all of them); ``overflow_now``
needs ``supervisor`` or ``ops`` and the queue's hotline in scope; call commands
(``transfer``, ``three_way``, ``complete``, ``cancel``, ``leave``, ``set_priority``,
``handover_feedback``) need ``agent`` or ``supervisor`` and the hotline the command acts for in the
sender's scope (checked by the engine, which knows the call — and for ``handover_feedback`` by
:class:`~callbridge.store.feedback.FeedbackDesk`: the receiving hotline); ``status`` is open to every role.

A signed command names its key (MQTT 5 user property ``key``, or a ``key`` field of the body) and the
key decides what the claimed role may be: the key file (``mqtt.command_keys_file``, a secret file, never
in the repository) lists for each key its secret, the roles it grants, its hotlines (``"*"`` = all) and
optionally the agents it may speak for::

    keys:
      - {id: desk-110-a, secret: "…", roles: [agent], hotlines: ["110"], agents: [agent2101]}
      - {id: sup-12345, secret: "…", roles: [agent, supervisor], hotlines: ["12345"]}
      - {id: ops, secret: "…", roles: [ops, supervisor], hotlines: ["*"]}

The older single shared secret (``command_secret``) is the key ``shared`` with the roles of
``command_secret_roles`` (``agent`` only by default) and every hotline. An unsigned command, where
unsigned commands are allowed (MQTT on loopback, see ``BusSettings.signatures_required``), may claim
any role: that is a lab set-up, not a deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from callbridge.bus.idents import AgentId, KeyId
from callbridge.errors import ConfigError, Problem

Role = Literal["agent", "supervisor", "ops"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "ops")
_CALL: tuple[Role, ...] = ("agent", "supervisor")

#: The roles each verb accepts.
VERB_ROLES: dict[str, tuple[Role, ...]] = {
    "transfer": _CALL, "three_way": _CALL, "complete": _CALL, "cancel": _CALL, "leave": _CALL,
    "set_priority": _CALL, "set_mode": ("supervisor", "ops"), "reload": ("supervisor", "ops"), "status": ROLES,
    "handover_feedback": _CALL, "nuisance_release": ("supervisor", "ops"),
    "overflow_now": ("supervisor", "ops"),
}  # fmt: skip
#: Verbs that act on the whole site: the sender's scope must be every hotline.
SITE_WIDE = frozenset({"set_mode", "reload", "nuisance_release"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The sender of a command as its key (or the lack of one) says."""

    id: str
    roles: tuple[Role, ...]
    #: hotlines the sender may act for; None = every hotline
    hotlines: frozenset[str] | None = None
    #: agents the sender may speak for; empty = any
    agents: frozenset[str] = frozenset()


UNSIGNED = Principal("unsigned", ROLES)


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: KeyId
    secret: SecretStr = Field(min_length=16)
    roles: tuple[Role, ...] = Field(min_length=1)
    hotlines: tuple[str, ...] = ("*",)
    agents: tuple[AgentId, ...] = ()

    def principal(self) -> Principal:
        scope = None if "*" in self.hotlines else frozenset(self.hotlines)
        return Principal(self.id, self.roles, scope, frozenset(a.split("/", 1)[-1] for a in self.agents))


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[KeyEntry, ...] = ()


def load_keys(path: Path) -> Mapping[str, KeyEntry]:
    """The command keys of a key file (YAML or JSON); ConfigError naming the file when it is invalid."""
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        keys = KeyFile.model_validate(data or {}).keys
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, 0, "mqtt.command_keys_file", f"cannot read: {exc}")]) from None
    except (YAMLError, ValidationError) as exc:
        # never echo the file's content: it holds secrets
        text = str(exc).splitlines()[0] if isinstance(exc, YAMLError) else f"{exc.error_count()} invalid field(s)"
        raise ConfigError([Problem(str(path), 0, 0, "mqtt.command_keys_file", text)]) from None
    by_id = {k.id: k for k in keys}
    if len(by_id) != len(keys):
        raise ConfigError([Problem(str(path), 0, 0, "mqtt.command_keys_file", "duplicate key id")])
    return by_id


def refusal(principal: Principal, verb: str, role: str, agent: str | None) -> str | None:
    """Why ``principal`` may not send ``verb`` as ``role`` (None: it may; the hotline scope is the engine's)."""
    if role not in principal.roles:
        return f"key {principal.id!r} does not grant the role {role!r}"
    allowed = VERB_ROLES.get(verb, ())
    if role not in allowed:
        return f"{verb} needs the role {' or '.join(allowed)}, not {role}"
    if verb in SITE_WIDE and principal.hotlines is not None:
        return f"{verb} acts on every hotline; key {principal.id!r} is limited to {sorted(principal.hotlines)}"
    if principal.agents and agent is not None and agent.split("/", 1)[-1] not in principal.agents:
        return f"key {principal.id!r} may not speak for agent {agent!r}"
    return None
