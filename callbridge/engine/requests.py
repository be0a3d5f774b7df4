"""From a transfer request (a DTMF one-key code or a command) to a transfer ready to start (sans-IO).

One authorisation for both sources (:func:`callbridge.engine.authz.authorise`), then the transfer record
and its start actions. The actions are built and every header rendered exactly once here and handed to
``TransferDesk.start`` with the transfer: the one-key path is latency-critical (DTMF arrival → first AMI action
written, p99 < 2 ms at 5,000 calls) and building and checking the twelve actions of a blind transfer
three times was a third of the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from callbridge.ami.actions import Action
from callbridge.dialplan.plan import Dialplan
from callbridge.engine import conference as conf
from callbridge.engine import transfer as tx
from callbridge.engine.authz import CallView, agent_name, authorise
from callbridge.engine.effects import ActionResult
from callbridge.engine.transfer import Transfer
from callbridge.errors import CommandError, UnsafeValueError

MODES = ("blind", "attended", "threeway")


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A transfer asked for by a DTMF code or a command (one path, one authorisation)."""

    call_id: str
    agent: str
    to_hotline: str | None = None
    code: str | None = None  # DTMF one-key code (the rule is looked up by code)
    mode: str | None = None  # override of the rule's mode (commands); None = the rule's
    category: str | None = None
    ticket: str = ""
    summary: str = ""
    idempotency_key: str | None = None
    source: str = "command"
    agent_channel: str | None = None  # the channel a DTMF code came from
    scope: frozenset[str] | None = None  # hotlines the sender may act for (commands); None = all


@dataclass(frozen=True, slots=True)
class PreparedTransfer:
    """An authorised transfer and its start actions, every header already rendered and checked."""

    transfer: Transfer
    actions: tuple[Action, ...]

    @property
    def first_batch(self) -> tuple[Action, ...]:
        """What ``TransferDesk.start`` sends now: a three-way calls the destination in only once the room holds
        caller and agent (the checked ``Originate`` is the last action)."""
        return self.actions[:-1] if self.transfer.mode == "threeway" else self.actions


def start_actions(t: Transfer) -> tuple[Action, ...]:
    if t.mode == "threeway":
        return (*conf.enter_room(t), conf.call_in(t, 0))
    if t.mode == "attended":
        return tx.attended_actions(t)
    return tx.blind_actions(t)


def check_scope(scope: frozenset[str] | None, hotline: str | None, what: str) -> None:
    """The sender's key must cover the hotline the command acts for (``forbidden`` otherwise)."""
    if scope is not None and (hotline or "") not in scope:
        raise CommandError("forbidden", f"may not {what} for hotline {hotline or '(none)'}: scope {sorted(scope)}")


def prepare_transfer(
    view: CallView,
    plan: Dialplan,
    mode: str,
    req: TransferRequest,
    now: float,
    *,
    busy: Callable[[str], Transfer | None],
    new_id: Callable[[], str],
) -> PreparedTransfer:
    """Authorise ``req`` and build its transfer; raises :class:`CommandError` (nothing is changed then).

    ``busy(call_id)`` is the transfer already running on the call; ``new_id`` is called only once the
    request passed every check but the header check (ids of refused requests are not used up).
    """
    g = authorise(view, plan, mode, call_id=req.call_id, agent=req.agent, to_hotline=req.to_hotline,
                  code=req.code, category=req.category, agent_channel=req.agent_channel)  # fmt: skip
    check_scope(req.scope, g.from_hotline, f"transfer call {req.call_id}")
    running = busy(req.call_id)
    if running is not None:
        raise CommandError(
            "call_busy", f"call {req.call_id} is already being transferred ({running.id} by {running.agent})"
        )
    rule = g.rule
    chosen_mode = req.mode or rule.mode
    if chosen_mode not in MODES:
        raise CommandError("invalid", f"unknown transfer mode {chosen_mode!r}")
    expert = rule.target == "expert" and chosen_mode != "threeway"
    to = rule.to_hotline
    caller = view.channel(g.caller_channel)
    trunk = plan.trunk_to(to)
    t = Transfer(
        id=new_id(), call_id=g.call.call_id, rule=rule, mode=chosen_mode, from_hotline=g.from_hotline,
        to_hotline=to, agent=agent_name(g.agent_interface), agent_interface=g.agent_interface,
        agent_channel=g.agent_channel, caller_channel=g.caller_channel,
        caller_num=(caller.caller_num if caller else "") or g.call.caller_num, category=g.category,
        ticket=req.ticket, summary=req.summary, source=req.source,
        context=f"cb-expert-{to}" if expert else f"cb-to-{to}",
        lines=() if expert else plan.lines_for(to),
        priority=plan.expert_priority(to, g.from_hotline, g.category) if expert else None,
        verify=trunk is not None and rule.carry_number and not expert,
        idempotency_key=req.idempotency_key, created=now,
    )  # fmt: skip
    if chosen_mode == "threeway":
        t.room = conf.room_name(t.id)
        t.handover_timeout = float(plan.engine.handover_timeout)
    actions = start_actions(t)
    try:
        tx.check_actions(actions)  # an unsafe value is refused before anything is written
    except UnsafeValueError as exc:
        raise CommandError("unsafe_value", f"refused: {exc}") from None
    return PreparedTransfer(t, actions)


#: States a transfer reaches once the PBX took its start actions.
_EXECUTING = frozenset({"routing", "consulting", "conference", "ringing", "answered", "completed"})


def start_outcome(t: Transfer) -> tuple[str, str, str] | None:
    """What the requester of ``t`` is told once the start actions were answered (sans-IO).

    ``("executing", "", state)`` when the PBX took them (whatever happened after), ``("failed", code,
    reason)`` when they failed (``ami_unavailable``, ``ami_failed``, ``ami_outcome_unknown`` after a
    resync, ``caller_hangup`` …); None while undecided (sending, or unknown until the resync).
    """
    if any(new in _EXECUTING for _, _, new, _ in t.history):
        return "executing", "", t.state.value
    if t.state.value in ("failed", "returned"):
        reason = t.history[-1][3] if t.history else t.state.value
        return "failed", reason.split(":", 1)[0] or t.state.value, reason
    return None


#: The batch each verb's execution result comes from (tag ``xfer:<transfer id>:<step>``).
STEPS = {"transfer": "start", "three_way": "start", "complete": "complete", "cancel": "cancel", "leave": "leave"}


class FollowUp(Protocol):
    """The bus's ``FollowUp``: the requester of an accepted command is told its execution result once."""

    def accept(self) -> None: ...

    def executing(self, result: dict[str, Any]) -> None: ...

    def failed(self, code: str, message: str, result: dict[str, Any] | None = None) -> None: ...


class OwedOutcomes:
    """Execution results owed to the requesters of commands (the bus's ``FollowUp``: ``accept()``,
    then ``executing(result)`` or ``failed(code, message, result)``), settled from action results."""

    def __init__(self) -> None:
        self._owed: dict[str, tuple[FollowUp, str]] = {}  # batch tag → (follow-up, transfer id)

    def owe(self, follow_up: FollowUp | None, verb: str, result: Mapping[str, Any]) -> None:
        """After a command was handled: owe its execution result when the PBX decides it."""
        step = STEPS.get(verb)
        transfer_id = str(result.get("transfer_id", ""))
        if step is None or follow_up is None or not transfer_id or result.get("duplicate"):
            return  # a duplicate's requester was told by the original request
        follow_up.accept()
        self._owed[f"xfer:{transfer_id}:{step}"] = (follow_up, transfer_id)

    def settle(self, transfers: Mapping[str, Transfer], tag: str | None = None,
               result: ActionResult | None = None) -> None:  # fmt: skip
        """This batch's result; or, without a tag (after a resync), every start that was still unknown."""
        for key in [tag] if tag is not None else list(self._owed):
            owed = self._owed.get(key)
            if owed is None:
                continue
            follow_up, transfer_id = owed
            t = transfers.get(transfer_id)
            if key.endswith(":start"):
                decided = start_outcome(t) if t is not None else ("failed", "no_transfer", "transfer forgotten")
                if decided is None:
                    continue  # unknown until the resync
                status, code, detail = decided
            elif result is not None:
                status = "executing" if result.outcome == "ok" else "failed"
                code = {"unknown": "ami_outcome_unknown"}.get(result.outcome, f"ami_{result.outcome}")
                detail = result.error or result.outcome
            else:
                continue
            del self._owed[key]
            described = t.describe() if t is not None else {"transfer_id": transfer_id}
            if status == "executing":
                follow_up.executing(described)
            else:
                follow_up.failed(code, detail, described)
