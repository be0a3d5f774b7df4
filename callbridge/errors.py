"""One exception root for callbridge.

Two branches, because callers react differently to them:

* :class:`LocalError` — misuse or bad input on our side (a bad dialplan, an unsafe header value, a
  malformed command). Retrying does not help; the input must change.
* :class:`RemoteError` — a fault of a peer (Asterisk, the MQTT broker). Retrying may help.

Errors carry their facts as attributes (not only in the message) so that logs, MQTT error replies and
tests can read them without parsing strings.
"""

from __future__ import annotations

from dataclasses import dataclass


class CallbridgeError(Exception):
    """Root of every error callbridge raises on purpose."""

    #: Stable machine-readable code (used in MQTT error replies and logs).
    code: str = "error"


# --- local misuse -------------------------------------------------------------------------------


class LocalError(CallbridgeError):
    code = "local_error"


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in a YAML file (dialplan or settings)."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    field: str  # dotted path, e.g. "hotlines.110.trunks[0]"
    message: str  # what was found and what was expected
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.field}: {self.message}"


class ConfigError(LocalError):
    """Settings or dialplan files are invalid; ``problems`` lists every located problem."""

    code = "config_invalid"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], summary: str = "") -> None:
        self.problems = tuple(problems)
        text = summary or "\n".join(str(p) for p in self.problems)
        super().__init__(text)


class UnreadableConfigError(LocalError):
    """A configuration path does not exist or cannot be read (``callbridge check`` exit 2)."""

    code = "config_unreadable"


class UnsafeValueError(LocalError, ValueError):
    """A value would change the meaning of an AMI frame (CR, LF, other control characters)."""

    code = "unsafe_value"

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self.value = value
        super().__init__(f"refused unsafe AMI header {header!r}: value {value!r} contains a control character")


class CommandError(LocalError):
    """A command (MQTT or DTMF) was malformed, unknown or not authorised."""

    code = "bad_command"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class PartFailedError(LocalError):
    """A part of the daemon (web server, records store, outbox, one of its tasks) could not start or
    stopped working; ``part`` names it, ``cause`` says why (e.g. ``cannot listen on 127.0.0.1:8080: …``)."""

    code = "part_failed"

    def __init__(self, part: str, cause: str) -> None:
        self.part = part
        self.cause = cause
        super().__init__(f"{part}: {cause}")


# --- remote faults ------------------------------------------------------------------------------


class RemoteError(CallbridgeError):
    code = "remote_error"


class AmiError(RemoteError):
    code = "ami_error"


class AmiLoginError(AmiError):
    """Asterisk refused our credentials: a configuration problem, never retried in a storm."""

    code = "ami_login_failed"


class AmiConnectionLost(AmiError):
    code = "ami_connection_lost"


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` to an action."""

    code = "ami_action_failed"

    def __init__(self, action: str, message: str, action_id: str = "") -> None:
        self.action = action
        self.action_id = action_id
        self.reason = message
        super().__init__(f"{action} failed: {message}")


class AmiOutcomeUnknown(AmiError):
    """The connection dropped after the action was written and before its reply arrived.

    The action is never re-sent; the caller must reconcile against the resynced state.
    """

    code = "ami_outcome_unknown"

    def __init__(self, action: str, action_id: str) -> None:
        self.action = action
        self.action_id = action_id
        super().__init__(f"{action} (ActionID {action_id}): connection lost before the reply; outcome unknown")


class BrokerError(RemoteError):
    code = "broker_error"
