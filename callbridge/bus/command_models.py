"""The command models: one strict pydantic model per verb (pure).

Every identifier uses its safe alphabet (:mod:`callbridge.bus.idents`); the models are strict, so a
number sent as a string (``"priority": "99"``) is refused, and unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from callbridge.bus import idents
from callbridge.bus.idents import (
    AgentId,
    CallerNum,
    CallId,
    CategoryId,
    HotlineId,
    KeyId,
    NameId,
    Reason,
    ReplyTo,
    Text,
    TicketId,
)
from callbridge.bus.principals import Role

# Every identifier has its safe alphabet (callbridge.bus.idents, documented in docs/mqtt.md): they may reach
# a topic (events of the call, of the hotline) or an AMI header.
HandoverValue = Annotated[str, Field(max_length=1000, pattern=idents.TEXT_PATTERN)] | int | float | bool | None
#: Echoed in the reply body only (never a topic or a header): any text without controls.
CorrelationId = Annotated[str, Field(max_length=256, pattern=idents.TEXT_PATTERN)]
Signature = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{64}$")]


class CommandBody(BaseModel):
    """Fields every command may carry."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: Who is asking (see :mod:`callbridge.bus.principals`); the signing key must grant it.
    role: Role = "agent"
    #: The signing key's id (MQTT 5 may send it as the user property ``key`` instead).
    key: KeyId | None = None
    #: MQTT 3.1.1 fallback: reply on ``callbridge/<site>/reply/<reply_to>``.
    reply_to: ReplyTo | None = None
    #: MQTT 3.1.1 fallback: echoed in the reply body.
    correlation_id: CorrelationId | None = None
    #: MQTT 3.1.1 signature (MQTT 5 uses the ``sig`` user property).
    sig: Signature | None = None


class TransferCommand(CommandBody):
    """One-key number-carrying transfer of a call to another hotline."""

    call_id: CallId
    agent: AgentId
    to_hotline: HotlineId
    mode: Literal["blind", "attended", "threeway"] = "blind"
    category: CategoryId | None = None
    ticket: TicketId | None = None
    summary: Text | None = None
    handover: dict[KeyId, HandoverValue] = Field(default_factory=dict, max_length=32)
    idempotency_key: KeyId | None = None


class CompleteCommand(CommandBody):
    """Complete an attended transfer (connect the caller to the destination)."""

    call_id: CallId
    agent: AgentId
    transfer_id: KeyId | None = None
    idempotency_key: KeyId | None = None


class CancelCommand(CommandBody):
    """Cancel a pending transfer (the caller returns to the agent)."""

    call_id: CallId
    agent: AgentId
    transfer_id: KeyId | None = None
    reason: Reason | None = None
    idempotency_key: KeyId | None = None


class ThreeWayCommand(CommandBody):
    """Start a three-way hand-over conference (caller, agent, destination hotline)."""

    call_id: CallId
    agent: AgentId
    to_hotline: HotlineId | None = None
    transfer_id: KeyId | None = None
    category: CategoryId | None = None
    ticket: TicketId | None = None
    summary: Text | None = None
    handover: dict[KeyId, HandoverValue] = Field(default_factory=dict, max_length=32)
    idempotency_key: KeyId | None = None


class LeaveCommand(CommandBody):
    """The sending agent leaves the three-way conference (hand-over done)."""

    call_id: CallId
    agent: AgentId
    idempotency_key: KeyId | None = None


class SetPriorityCommand(CommandBody):
    """Raise (or lower) the queue priority of a caller waiting in a queue (QueueChangePriorityCaller).

    ``agent`` is the agent or supervisor asking (endpoint name ``agent1001`` or ``PJSIP/agent1001``); it
    must work for the hotline owning the queue or the hotline the call came in on. Higher is answered first.
    """

    call_id: CallId
    agent: AgentId
    priority: Annotated[int, Field(ge=0, le=100)]
    reason: Reason | None = None
    idempotency_key: KeyId | None = None


class SetModeCommand(CommandBody):
    """Switch the operating mode (e.g. day/night/disaster). Role supervisor or ops, site-wide scope."""

    mode: NameId
    agent: AgentId | None = None
    reason: Reason | None = None


class ReloadCommand(CommandBody):
    """Reload the dialplan (rejected with its problems if invalid). Role supervisor or ops, site-wide scope."""

    agent: AgentId | None = None


class StatusCommand(CommandBody):
    """Status of the daemon, a call, or a hotline."""

    call_id: CallId | None = None
    hotline: HotlineId | None = None


class HandoverFeedbackCommand(CommandBody):
    """The receiving side reports what became of a handed-over case (the case loop, 受理反馈闭环).

    ``transfer_id`` is the hand-over id (of ``transfer.requested``); ``outcome`` ``accepted``, ``dispatched``,
    ``resolved`` or ``returned`` (which needs a ``reason``). The sender's key must cover the receiving
    hotline. Publishes ``handover.feedback`` under both hotlines; ``resolved`` and ``returned`` close the loop.
    """

    transfer_id: KeyId
    agent: AgentId
    outcome: Literal["accepted", "dispatched", "resolved", "returned"]
    reason: Reason | None = None
    ticket: TicketId | None = None


class NuisanceReleaseCommand(CommandBody):
    """Release a caller number flagged as a nuisance: its calls are counted afresh (nothing tagged or
    announced until it passes the threshold again). Role supervisor or ops, site-wide scope (the window
    counts calls to every hotline). Publishes ``nuisance.released``."""

    caller_num: CallerNum
    agent: AgentId | None = None
    reason: Reason | None = None


class OverflowNowCommand(CommandBody):
    """Send a queue's waiting callers to the remote seats now, whatever the thresholds: the queue's overflow
    rule (the current mode's, else the dialplan's) starts with reason ``manual`` and every waiting caller is
    withdrawn to its target; it ends as usual once the queue has recovered. Role supervisor or ops, the
    queue's hotline in scope. Publishes ``queue.overflow_started`` (when not already in effect)."""

    queue: NameId
    agent: AgentId | None = None
    reason: Reason | None = None


VERBS: dict[str, type[CommandBody]] = {
    "transfer": TransferCommand,
    "complete": CompleteCommand,
    "cancel": CancelCommand,
    "three_way": ThreeWayCommand,
    "leave": LeaveCommand,
    "set_priority": SetPriorityCommand,
    "set_mode": SetModeCommand,
    "reload": ReloadCommand,
    "status": StatusCommand,
    "handover_feedback": HandoverFeedbackCommand,
    "nuisance_release": NuisanceReleaseCommand,
    "overflow_now": OverflowNowCommand,
}
