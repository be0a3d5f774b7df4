"""The dialplan language: pure pydantic v2 models (no I/O).

The ops team writes YAML; :mod:`callbridge.dialplan.loader` turns it into these models, runs the
cross-reference checks (:mod:`callbridge.dialplan.checks`) and hands the rest of the code a frozen
:class:`callbridge.dialplan.plan.Dialplan`. Every model forbids unknown keys (a typo must be an error,
not a silently ignored setting) and is frozen (a loaded dialplan is swapped whole, never mutated).

Objects that live in a top-level mapping (hotlines, trunks, queues, rules, overflow, modes) are keyed by
their id in YAML; the id is copied into the object (``Hotline.number``, ``Trunk.name``, ``Queue.name``,
``TransferRule.id``, ``Overflow.id``, ``Mode.name``) so code holding one object knows what it is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator


def _int_to_str(value: Any) -> Any:
    # YAML reads an unquoted 110 as an integer; a phone number is text (leading zeros matter, so the
    # docs tell ops to quote numbers that start with 0).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: The alphabets of a hotline number, a name and a category; callbridge.bus.idents and dialplan.site use
#: these same patterns, so a value the dialplan accepts is one a command or a site file may name.
DIGITS_PATTERN = r"^[0-9]{2,20}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_DIAL = r"^(PJSIP|SIP|IAX2|DAHDI|Local)/[A-Za-z0-9_.@+*#/-]+$"
_DTMF = r"^[*#][0-9]{1,3}$"
CATEGORY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_LABEL = r"^[^\x00-\x1f\x7f]*$"

#: Human wording of each pattern, used in error messages instead of the regular expression.
PATTERN_HELP: dict[str, str] = {
    DIGITS_PATTERN: "expected a phone number of 2-20 digits, e.g. 110 or 12345",
    NAME_PATTERN: "expected a name of letters, digits, '_', '.', '-' (no spaces), e.g. q-12345",
    _DIAL: "expected an Asterisk dial string like PJSIP/110@hotline-110 or Local/2001@sim"
    " (no spaces, commas, '&' or parentheses)",
    _DTMF: "expected '*' or '#' followed by 1-3 digits, e.g. '*1' (quote it in YAML)",
    CATEGORY_PATTERN: "expected a lower-case identifier, e.g. police or non_police",
    _LABEL: "expected one line of text without control characters",
}

#: A phone number / DID: digits only (it becomes an Asterisk extension and part of context names).
Digits = Annotated[
    str,
    BeforeValidator(_int_to_str),
    Field(pattern=DIGITS_PATTERN),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": DIGITS_PATTERN}, {"type": "integer", "minimum": 10}]}),
]
#: An id used as an Asterisk section / context / queue name: no spaces, commas, semicolons, brackets.
Name = Annotated[
    str,
    BeforeValidator(_int_to_str),
    Field(pattern=NAME_PATTERN),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": NAME_PATTERN}, {"type": "integer", "minimum": 0}]}),
]
#: An Asterisk dial string or queue member interface, e.g. ``PJSIP/110@hotline-110``, ``Local/2001@sim``.
#: Commas, ``&``, parentheses and ``;`` would change the meaning of the rendered ``Dial()``/``Queue()``.
DialString = Annotated[str, Field(pattern=_DIAL)]
#: A DTMF code an agent presses: ``*`` or ``#`` followed by 1-3 digits (e.g. ``*1``).
DtmfCode = Annotated[str, BeforeValidator(_int_to_str), Field(pattern=_DTMF)]
#: Display text (Chinese fine); one line, because it is also written into Asterisk config comments.
Label = Annotated[str, Field(pattern=_LABEL, max_length=80)]
#: A request category (police / non_police / emergency / fire / medical / traffic / water …).
Category = Annotated[str, Field(pattern=CATEGORY_PATTERN)]

HotlineKind = Literal["service", "emergency", "utility"]
TransferMode = Literal["blind", "attended", "threeway"]
#: What happens, in order, when the destination does not answer in ``answer_timeout``:
#: ``backup_line`` – try the trunk's next line(s); ``back_to_agent`` – ring the agent who sent it;
#: ``origin_queue`` – queue again at the sending hotline; ``hangup`` – give up (never for emergencies).
FailureStep = Literal["backup_line", "back_to_agent", "origin_queue", "hangup"]
QueueStrategy = Literal["ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom"]
NuisanceAction = Literal["tag", "notify_110", "announcement"]
TransferTarget = Literal["agents", "expert"]


# Validators that concern one field start their message with "<field>: " so the loader can point at
# that field's line instead of the whole object.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- hotlines -------------------------------------------------------------------------------------


class ExpertPriority(_Model):
    """Queue priority a call gets in an expert queue; the first matching entry wins."""

    origin: Digits | None = Field(default=None, description="sending hotline number; empty = any")
    category: Category | None = Field(default=None, description="request category; empty = any")
    priority: int = Field(ge=0, le=100, description="app_queue QUEUE_PRIO (higher is answered first)")


class ExpertSeats(_Model):
    """专家座席: a queue of experienced agents that takes referred/hard calls first."""

    queue: Name
    priorities: tuple[ExpertPriority, ...] = ()
    default_priority: int = Field(default=0, ge=0, le=100)


class Hotline(_Model):
    number: Digits = Field(description="the hotline number, e.g. 12345, 110 (the key in YAML)")
    name: Label = Field(min_length=1, description="display name, e.g. 市民服务热线")
    kind: HotlineKind
    dids: tuple[Digits, ...] = Field(default=(), description="numbers dialled by callers that land here")
    inbound_trunks: tuple[Name, ...] = Field(default=(), description="trunks whose calls arrive for this hotline")
    outbound_trunk: Name | None = Field(default=None, description="trunk that reaches this hotline's remote centre")
    agent_queues: tuple[Name, ...] = Field(default=(), description="local agent queues, first is the main one")
    expert: ExpertSeats | None = None
    answer_rate_target: float = Field(default=0.8, ge=0.0, le=1.0)


# --- trunks and queues ----------------------------------------------------------------------------


class NumberCarrying(_Model):
    """How the original caller's number is presented on a trunk (号码携带)."""

    present_caller_id: bool = Field(default=True, description="set CALLERID(num) of the outbound leg")
    p_asserted_identity: bool = Field(default=True, description="send P-Asserted-Identity (send_pai=yes)")
    verify: bool = Field(default=False, description="check the far end saw the caller's number")
    handover_header: bool = Field(
        default=False, description="inter-centre trunk: the hand-over id in X-Callbridge-Handover (both ways)"
    )


class Trunk(_Model):
    name: Name
    lines: tuple[DialString, ...] = Field(min_length=1, description="primary first, then backup lines (备用专线)")
    max_channels: int | None = Field(default=None, ge=1, le=10000)
    number_carrying: NumberCarrying = NumberCarrying()


class Queue(_Model):
    name: Name
    strategy: QueueStrategy = "ringall"
    members: tuple[DialString, ...] = ()
    timeout: int = Field(default=15, ge=1, le=600, description="seconds each member rings")
    max_wait: int = Field(default=600, ge=1, le=86400, description="seconds a caller may wait in the queue")


# --- transfer rules -------------------------------------------------------------------------------


class TransferRule(_Model):
    id: Name
    from_hotline: Digits
    to_hotline: Digits
    code: DtmfCode = Field(description="one-key code the agent presses, e.g. '*1'")
    mode: TransferMode = "blind"
    target: TransferTarget = Field(default="agents", description="destination agents or its expert seats")
    carry_number: bool = True
    answer_timeout: int = Field(default=30, ge=5, le=300)
    failure: tuple[FailureStep, ...] = ("backup_line", "back_to_agent")
    categories: tuple[Category, ...] = Field(default=(), description="categories served; empty = all")
    agent_leaves: bool = Field(default=False, description="threeway: sending agent leaves after hand-over")
    label: Label = ""

    @model_validator(mode="after")
    def _consistent(self) -> TransferRule:
        if self.from_hotline == self.to_hotline:
            raise ValueError(
                f"to_hotline: from_hotline and to_hotline are both {self.from_hotline}; a rule must link two hotlines"
            )
        if self.agent_leaves and self.mode != "threeway":
            raise ValueError(f"agent_leaves: only applies to mode 'threeway', found mode {self.mode!r}")
        if "hangup" in self.failure[:-1]:
            raise ValueError("failure: 'hangup' must be the last step of the failure chain (nothing runs after it)")
        if len(set(self.failure)) != len(self.failure):
            raise ValueError(f"failure: the failure chain repeats a step: {list(self.failure)}")
        return self


# --- overflow, nuisance, modes --------------------------------------------------------------------


class OverflowStart(_Model):
    """Start overflowing when free agents <= free_agents_at_most AND (waiting or longest wait reached)."""

    waiting_calls: int | None = Field(default=None, ge=1)
    longest_wait: int | None = Field(default=None, ge=1, description="seconds")
    free_agents_at_most: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_trigger(self) -> OverflowStart:
        if self.waiting_calls is None and self.longest_wait is None:
            raise ValueError("set waiting_calls or longest_wait (or both): otherwise overflow never starts")
        return self


class OverflowRecover(_Model):
    """Stop overflowing when waiting calls <= waiting_calls AND longest wait <= longest_wait."""

    waiting_calls: int = Field(default=0, ge=0)
    longest_wait: int | None = Field(default=None, ge=0, description="seconds")


class Overflow(_Model):
    """远程座席: excess calls of a local queue go to a remote queue or a trunk to another region."""

    id: Name
    queue: Name = Field(description="the local queue that is watched")
    start: OverflowStart
    recover: OverflowRecover = OverflowRecover()
    to_queue: Name | None = None
    to_trunk: Name | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Overflow:
        if (self.to_queue is None) == (self.to_trunk is None):
            raise ValueError("to_queue: set exactly one of to_queue or to_trunk")
        return self


class NuisancePolicy(_Model):
    """滋扰治理: a number calling too often in a window is flagged."""

    window: int = Field(default=600, ge=10, le=86400, description="seconds")
    threshold: int = Field(default=5, ge=2, le=1000, description="calls within the window")
    exempt: tuple[Digits, ...] = ()
    actions: tuple[NuisanceAction, ...] = Field(default=("tag",), min_length=1)
    hotlines: tuple[Digits, ...] = Field(default=(), description="hotlines watched; empty = all")
    announcement: Name = Field(default="callbridge-nuisance", description="sound file played by 'announcement'")


class Mode(_Model):
    """A run-time plan (normal / surge / emergency 应急联动方案) choosing active rules and overflow."""

    name: Name
    label: Label = ""
    extends: Name | None = Field(default=None, description="start from another mode's rules and overflow")
    rules: tuple[Name, ...] = ()
    overflow: tuple[Name, ...] = ()
    nuisance: bool = True


class Features(_Model):
    """Asterisk in-call feature codes (features.conf); one-key codes must not collide with them."""

    blindxfer: DtmfCode = "#1"
    atxfer: DtmfCode = "*2"
    disconnect: DtmfCode = "*0"
    #: only active during an attended-transfer consultation, so it may equal a one-key code
    atxferabort: DtmfCode = "*1"

    def in_call_codes(self) -> dict[str, str]:
        return {"blindxfer": self.blindxfer, "atxfer": self.atxfer, "disconnect": self.disconnect}


class EngineOptions(_Model):
    """Per-site engine settings."""

    dtmf_interdigit_timeout: float = Field(default=2.0, gt=0, le=10, description="seconds between code digits")
    handover_timeout: int = Field(default=120, ge=10, le=3600, description="max seconds of a three-way hand-over")
    unknown_outcome_timeout: float = Field(
        default=20.0, gt=0, le=600,
        description="seconds a transfer whose AMI reply was lost waits for a resync before the live picture decides it",
    )


# --- the whole dialplan ---------------------------------------------------------------------------

#: top-level mapping → the field inside each object that repeats the mapping key
KEYED_SECTIONS: dict[str, str] = {
    "hotlines": "number",
    "trunks": "name",
    "queues": "name",
    "rules": "id",
    "overflow": "id",
    "modes": "name",
}


class DialplanModel(_Model):
    version: Literal[1] = 1
    start_mode: Name = "normal"
    engine: EngineOptions = EngineOptions()
    features: Features = Features()
    categories: dict[Category, Label] = Field(default_factory=dict, description="category → label")
    hotlines: dict[Digits, Hotline] = Field(default_factory=dict)
    trunks: dict[Name, Trunk] = Field(default_factory=dict)
    queues: dict[Name, Queue] = Field(default_factory=dict)
    rules: dict[Name, TransferRule] = Field(default_factory=dict)
    overflow: dict[Name, Overflow] = Field(default_factory=dict)
    nuisance: NuisancePolicy | None = None
    modes: dict[Name, Mode] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data: Any) -> Any:
        """Copy each mapping key into its object (``hotlines: {110: {...}}`` → ``Hotline.number='110'``)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for section, id_field in KEYED_SECTIONS.items():
            items = out.get(section)
            if not isinstance(items, dict):
                continue
            filled: dict[Any, Any] = {}
            for key, value in items.items():
                if isinstance(value, dict) and id_field not in value:
                    value = {id_field: key, **value}
                filled[key] = value
            out[section] = filled
        return out

    def to_yaml_data(self) -> dict[str, Any]:
        """Plain data in the YAML shape (ids live in the keys only), for dumping and round-trips."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_defaults=True)
        for section, id_field in KEYED_SECTIONS.items():
            for obj in data.get(section, {}).values():
                obj.pop(id_field, None)
        return data


def json_schema() -> dict[str, Any]:
    """JSON Schema of the YAML language (ids are the mapping keys, so they are not required inside)."""
    schema = DialplanModel.model_json_schema(mode="validation")
    schema["patternProperties"] = {
        "^x-": {"description": "not read: a place for blocks other keys merge in (x-rule: &rule {...}; <<: *rule)"}
    }
    id_fields = {
        "Hotline": "number",
        "Trunk": "name",
        "Queue": "name",
        "TransferRule": "id",
        "Overflow": "id",
        "Mode": "name",
    }
    for name, field in id_fields.items():
        definition = schema.get("$defs", {}).get(name, {})
        required = [r for r in definition.get("required", []) if r != field]
        if required:
            definition["required"] = required
        else:
            definition.pop("required", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://callbridge.example/dialplan.schema.json",
        **schema,
        "title": "callbridge dialplan",
        "description": "Hotline linkage dialplan (callbridge). Generated by `callbridge schema`; do not edit.",
    }
