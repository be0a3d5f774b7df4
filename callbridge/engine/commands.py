"""Commands as engine calls, typed: one method per verb, each taking the shape of that verb's body (pure).

The bodies are protocols the bus's command models (:mod:`callbridge.bus.command_models`) satisfy, so the
engine never imports the bus and mypy checks every field a verb reads where the runtime pairs a model
with its method (:mod:`callbridge.runtime.engine_commands`). A new verb is a body protocol, a method here
and one route there.

Every method checks the sender's hotline scope first (``scope``: the hotlines the signing key may act
for, None = all): transfers with the grant, a running transfer's command for its sending hotline,
``set_priority`` for the call's hotline, ``status`` of a hotline for that hotline (and a scoped key sees
only its hotlines' transfers); site-wide verbs need an unscoped key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from callbridge.engine.requests import TransferRequest, check_scope
from callbridge.errors import CommandError

if TYPE_CHECKING:
    from callbridge.engine.core import Engine

Scope = frozenset[str] | None
Result = dict[str, Any]


class _Sent(Protocol):
    @property
    def agent(self) -> str: ...

    @property
    def call_id(self) -> str: ...


class _Handover(_Sent, Protocol):
    @property
    def category(self) -> str | None: ...

    @property
    def ticket(self) -> str | None: ...

    @property
    def summary(self) -> str | None: ...

    @property
    def idempotency_key(self) -> str | None: ...


class TransferBody(_Handover, Protocol):
    @property
    def to_hotline(self) -> str: ...

    @property
    def mode(self) -> str: ...

    @property
    def model_fields_set(self) -> set[str]: ...  # which fields the sender gave (pydantic)


class ThreeWayBody(_Handover, Protocol):
    @property
    def to_hotline(self) -> str | None: ...


class OnTransferBody(_Sent, Protocol):
    """complete / cancel: a running attended transfer, by id or the call's."""

    @property
    def transfer_id(self) -> str | None: ...


class LeaveBody(_Sent, Protocol): ...


class PriorityBody(_Sent, Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def reason(self) -> str | None: ...


class ModeBody(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def agent(self) -> str | None: ...

    @property
    def reason(self) -> str | None: ...


class NuisanceBody(Protocol):
    @property
    def caller_num(self) -> str: ...

    @property
    def agent(self) -> str | None: ...

    @property
    def reason(self) -> str | None: ...


class OverflowBody(Protocol):
    @property
    def queue(self) -> str: ...

    @property
    def agent(self) -> str | None: ...


class StatusBody(Protocol):
    @property
    def call_id(self) -> str | None: ...

    @property
    def hotline(self) -> str | None: ...


class EngineCommands:
    """The verbs the engine serves, over its public API."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def transfer(self, b: TransferBody, scope: Scope, now: float) -> Result:
        # a transfer without "mode" takes the rule's (as the DTMF key does), not the schema's default
        mode = b.mode if "mode" in b.model_fields_set else None
        return self._request(b, b.to_hotline, mode, scope, now)

    def three_way(self, b: ThreeWayBody, scope: Scope, now: float) -> Result:
        if not b.to_hotline:
            raise CommandError("invalid", "three_way needs to_hotline")
        return self._request(b, b.to_hotline, "threeway", scope, now)

    def _request(self, b: _Handover, to_hotline: str | None, mode: str | None, scope: Scope, now: float) -> Result:
        req = TransferRequest(
            call_id=b.call_id, agent=b.agent, to_hotline=to_hotline, mode=mode, category=b.category,
            ticket=b.ticket or "", summary=b.summary or "", idempotency_key=b.idempotency_key,
            source="command", scope=scope,
        )  # fmt: skip
        return self.engine.request_transfer(req, now)  # the scope is checked with the grant

    def complete(self, b: OnTransferBody, scope: Scope, now: float) -> Result:
        self._check_running(scope, b.call_id, b.transfer_id, "complete")
        return self.engine.complete(b.call_id, b.agent, b.transfer_id, now)

    def cancel(self, b: OnTransferBody, scope: Scope, now: float) -> Result:
        self._check_running(scope, b.call_id, b.transfer_id, "cancel")
        return self.engine.cancel(b.call_id, b.agent, b.transfer_id, now)

    def leave(self, b: LeaveBody, scope: Scope, now: float) -> Result:
        self._check_running(scope, b.call_id, None, "leave")
        return self.engine.leave(b.call_id, b.agent, now)

    def set_priority(self, b: PriorityBody, scope: Scope, now: float) -> Result:
        check_scope(scope, self._call_hotline(b.call_id), "set_priority")
        return self.engine.set_priority(b.call_id, b.priority, now, agent=b.agent, reason=b.reason or "")

    def set_mode(self, b: ModeBody, scope: Scope, now: float) -> Result:
        check_scope(scope, None, "set_mode")  # site-wide
        return self.engine.set_mode(b.mode, now, reason=b.reason or "command", agent=b.agent or "")

    def nuisance_release(self, b: NuisanceBody, scope: Scope, now: float) -> Result:
        check_scope(scope, None, "nuisance_release")  # site-wide: the window counts every hotline
        agent = (b.agent or "").split("/", 1)[-1]
        return dict(self.engine.nuisance.release(b.caller_num, now, agent=agent, reason=b.reason or ""))

    def overflow_now(self, b: OverflowBody, scope: Scope, now: float) -> Result:
        owner = self.engine.plan.hotline_of_queue(b.queue)
        if owner is None:
            raise CommandError("unknown_queue", f"no queue {b.queue!r} in the dialplan")
        check_scope(scope, owner.number, "overflow_now")  # the queue's hotline
        return self.engine.overflow_now(b.queue, now, agent=(b.agent or "").split("/", 1)[-1])

    def status(self, b: StatusBody, scope: Scope, now: float) -> Result:
        if b.hotline is not None:
            check_scope(scope, b.hotline, "status")
        status = self.engine.status(call_id=b.call_id, hotline=b.hotline)
        if scope is not None:  # a key limited to some hotlines sees their transfers only
            status["transfers"] = [t for t in status["transfers"] if {t["from_hotline"], t["to_hotline"]} & scope]
        return status

    def _check_running(self, scope: Scope, call_id: str, transfer_id: str | None, verb: str) -> None:
        """A command on a running transfer acts for its sending hotline (the call's, when none runs)."""
        if scope is None:
            return
        running = self.engine.transfers.get(transfer_id or "") or self.engine.active_on_call(call_id)
        check_scope(scope, running.from_hotline if running is not None else self._call_hotline(call_id), verb)

    def _call_hotline(self, call_id: str) -> str | None:
        call = self.engine.view.calls.get(call_id)
        return call.hotline if call is not None else None

