"""The engine: pure decisions over the call tracker's picture (sans-IO), as one façade over its parts.

Inputs are method calls — AMI events with the domain events the tracker derived from them, commands,
timer fires, action results, connection changes, dialplan swaps. Outputs are :mod:`effects`, written by
every part to one :class:`~callbridge.engine.effects.EffectSink` and taken with :meth:`Engine.drain`;
:mod:`callbridge.runtime.engine_service` executes them. Nothing here awaits.

The parts, each an object of its own that shares nothing with the others but what it is handed:

* :class:`~callbridge.engine.transfers.Transfers` — the transfers followed (the registry);
* :class:`~callbridge.engine.observe.Observer` — PBX facts and action results → transfer steps;
* :class:`~callbridge.engine.reconcile.Reconciler` — the decisions after a resync;
* :class:`~callbridge.engine.desk.TransferDesk` — requests and the commands on a running transfer;
* :class:`~callbridge.engine.dtmf.OneKeys`, :class:`~callbridge.engine.nuisance.NuisanceControl`,
  :class:`~callbridge.engine.overflow_control.OverflowControl`.

The façade owns what they all read — the dialplan and the mode — and hands it to each call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from callbridge.ami.actions import Action, Hangup
from callbridge.ami.event_types import AmiEvent
from callbridge.calls import events as ce
from callbridge.calls.model import Queue
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.engine import handover
from callbridge.engine.authz import CallView, agent_name, hotline_of
from callbridge.engine.desk import TransferDesk
from callbridge.engine.dtmf import TIMER_KIND as DTMF_TIMER
from callbridge.engine.dtmf import OneKeys
from callbridge.engine.effects import ActionResult, Effect, EffectSink
from callbridge.engine.nuisance import NuisanceControl
from callbridge.engine.observe import Observer, transfer_step
from callbridge.engine.overflow_control import TICK as OVERFLOW_TICK
from callbridge.engine.overflow_control import OverflowControl
from callbridge.engine.queues import priority_change
from callbridge.engine.reconcile import Reconciler
from callbridge.engine.requests import PreparedTransfer, TransferRequest
from callbridge.engine.transfer import Transfer, TState
from callbridge.engine.transfers import Transfers
from callbridge.errors import CommandError

log = structlog.get_logger("callbridge.engine")

#: timer ``unknown:<transfer id>``: a start whose outcome is unknown is decided (see ``_unknown_expired``)
UNKNOWN_TIMER = "unknown"

__all__ = ["CallerGuard", "Engine", "TransferRequest", "hotline_of"]


def _moves_queues(cls: type[AmiEvent]) -> bool:
    """A Queue*/Agent* event: the overflow rules look at the queues again after it."""
    return cls.__name__.startswith(("Queue", "Agent"))


def _new_id() -> str:
    """12 random hex digits (48 bits, as ``uuid4().hex[:12]`` was, at a fifth of its cost)."""
    return os.urandom(6).hex()


class CallerGuard:
    """The structural guarantee every batch passes: callbridge never hangs up a caller (an emergency
    caller above all). A three-way call-in leg callbridge originated has its own Linkedid, so the tracker
    calls it a caller; it may be hung up."""

    __slots__ = ("transfers", "view")

    def __init__(self, view: CallView, transfers: Transfers) -> None:
        self.view = view
        self.transfers = transfers

    def __call__(self, actions: Sequence[Action], tag: str) -> bool:
        for a in actions:
            target = self.view.channel(a.channel) if isinstance(a, Hangup) else None
            if target is None or target.role != "caller":
                continue
            if self.transfers.by_leg(target.uniqueid, finished=True) is None:
                log.error("engine.refused_to_hang_up_caller", channel=target.name, tag=tag)
                return False
        return True


class Engine:
    def __init__(
        self,
        plan: Dialplan,
        view: CallView,
        *,
        new_id: Callable[[], str] = _new_id,
        mode: str | None = None,
    ) -> None:
        self.plan = plan
        self.view = view
        self.mode = mode or plan.start_mode
        self.connected = False
        self.transfers = Transfers()
        self.effects = EffectSink(CallerGuard(view, self.transfers))
        self.observer = Observer(self.transfers, view, self.effects)
        self.reconciler = Reconciler(view, self.observer.steps)
        self.desk = TransferDesk(self.transfers, view, self.effects, new_id)
        self.keys = OneKeys(self.effects)
        self.nuisance = NuisanceControl(self.effects)
        self.overflow = OverflowControl(self.effects)

    # --- effects and transfers ----------------------------------------------------------------------

    def drain(self) -> list[Effect]:
        return self.effects.drain()

    def publish(self, event: DomainEvent) -> None:
        self.effects.publish(event)

    def send(self, actions: Sequence[Action], tag: str = "") -> None:
        self.effects.send(actions, tag)

    def add(self, t: Transfer) -> None:
        """Follow ``t`` (recalled from the records after a restart)."""
        self.transfers.add(t)

    def active(self) -> list[Transfer]:
        return self.transfers.active()

    def active_on_call(self, call_id: str) -> Transfer | None:
        return self.transfers.active_on_call(call_id)

    # --- inputs: PBX --------------------------------------------------------------------------------

    def on_ami_event(self, event: AmiEvent, derived: Sequence[DomainEvent], now: float) -> None:
        """One AMI event, after the tracker applied it (``derived`` = its domain events)."""
        for d in derived:
            if isinstance(d, ce.CallDtmf):
                self._on_digit(d, now)
            elif isinstance(d, ce.CallOffered):
                self._on_offered(d, now)
        self.observer.observe(event, now)
        if _moves_queues(type(event)):
            self._check_overflow(now)

    def reads_itself(self, cls: type[AmiEvent]) -> bool:
        """Whether :meth:`on_ami_event` looks at an event of ``cls`` itself; when not, an event of it that derived
        no domain event does nothing here (the service skips the call)."""
        return self.observer.handles(cls) or _moves_queues(cls)

    def on_connected(self, host: str, now: float) -> None:
        self.connected = True
        self.publish(ev.AmiConnectedEvent(ts=now, host=host))

    def on_lost(self, reason: str, now: float) -> None:
        self.connected = False
        self.publish(ev.AmiLostEvent(ts=now, reason=reason))

    def on_resynced(self, now: float) -> None:
        """The tracker was rebuilt from the PBX: reconcile transfers (never repeating an action)."""
        for t in self.transfers.active():
            self.reconciler.reconcile(t, now)
        self._check_overflow(now)

    def on_action_result(self, result: ActionResult, now: float) -> None:
        self.observer.on_action_result(result, now)
        step = transfer_step(result.tag)
        if result.outcome == "unknown" and step is not None and step[1] == "start":
            # a reply that never came on a connection that stays up: no resync will decide it, this timer does
            self.effects.start_timer(f"{UNKNOWN_TIMER}:{step[0]}", self.plan.engine.unknown_outcome_timeout)

    def _unknown_expired(self, transfer_id: str, now: float) -> None:
        """Still unknown after ``engine.unknown_outcome_timeout``: the live picture decides, as a resync would
        (moved on if the start took effect, else failed ``ami_outcome_unknown``); without AMI it fails."""
        t = self.transfers.get(transfer_id)
        if t is None or t.state is not TState.UNKNOWN:
            return
        if self.connected:
            self.reconciler.reconcile(t, now)
        else:
            self.observer.steps.fail(t, "ami_outcome_unknown: no resync in time", now)

    def on_timer(self, key: str, now: float) -> None:
        kind, _, name = key.partition(":")
        if kind == DTMF_TIMER:
            self.keys.expired(name)
        elif kind == handover.TIMER_KIND:
            self.observer.handover_expired(name, now)
        elif kind == UNKNOWN_TIMER:
            self._unknown_expired(name, now)
        elif key == OVERFLOW_TICK:
            self.overflow.ticked(self.plan, self.mode, self._queues(), now)

    def _on_digit(self, d: ce.CallDtmf, now: float) -> None:
        req = self.keys.on_digit(d, self.plan, self.mode, self.plan.engine.dtmf_interdigit_timeout)
        if req is None:
            return
        try:
            self.desk.request(req, self.plan, self.mode, now)
        except CommandError as exc:  # logged after dtmf.code
            self.effects.log_later("dtmf.refused", channel=d.channel, code=exc.code, reason=str(exc))

    def _on_offered(self, d: ce.CallOffered, now: float) -> None:
        if d.call_id and self.transfers.by_leg(d.call_id, finished=True) is not None:
            return  # a three-way leg callbridge called in presents the citizen's number: not another call
        self.nuisance.offered(d, self.plan, self.mode, now)

    def _queues(self) -> Mapping[str, Queue]:
        queues: Mapping[str, Queue] = getattr(self.view, "queues", {})  # a view without queues has none
        return queues

    def overflow_now(self, queue: str, now: float, *, agent: str = "") -> dict[str, Any]:
        """A supervisor sends ``queue``'s waiting callers to the remote seats now (see OverflowControl)."""
        return dict(self.overflow.send_now(self.plan, self.mode, self._queues(), queue, now, agent=agent))

    def _check_overflow(self, now: float) -> None:
        self.overflow.check(self.plan, self.mode, self._queues(), now)

    # --- commands -------------------------------------------------------------------------------------

    def request_transfer(self, req: TransferRequest, now: float) -> dict[str, Any]:
        """Authorise and start a transfer. Raises :class:`CommandError` (and publishes the refusal)."""
        t, duplicate = self.desk.request(req, self.plan, self.mode, now)
        return {**t.describe(), "duplicate": True} if duplicate else t.describe()

    def start(self, t: Transfer, now: float, prepared: PreparedTransfer | None = None) -> None:
        self.desk.start(t, now, prepared)

    def complete(self, call_id: str, agent: str, transfer_id: str | None, now: float) -> dict[str, Any]:
        return self.desk.complete(call_id, agent, transfer_id)

    def cancel(self, call_id: str, agent: str, transfer_id: str | None, now: float) -> dict[str, Any]:
        return self.desk.cancel(call_id, agent, transfer_id)

    def leave(self, call_id: str, agent: str, now: float) -> dict[str, Any]:
        return self.desk.leave(call_id, agent)

    def set_priority(self, call_id: str, priority: int, now: float, *, agent: str = "",
                     reason: str = "") -> dict[str, Any]:  # fmt: skip
        """Raise (or lower) a waiting caller's priority at once (see :func:`queues.priority_change`)."""
        action, event = priority_change(self.view, self.plan, call_id, priority, now, agent=agent, reason=reason)
        self.send((action,), "priority")
        log.info("queue.priority_set", call_id=call_id, queue=event.queue, priority=priority, agent=event.agent)
        self.publish(event)
        return {"call_id": call_id, "queue": event.queue, "priority": priority, "channel": event.channel}

    def set_mode(self, mode: str, now: float, *, reason: str = "command", agent: str = "") -> dict[str, Any]:
        valid = set(self.plan.modes) or {self.plan.start_mode}
        if mode not in valid:
            raise CommandError("unknown_mode", f"mode {mode!r} is not one of {sorted(valid)}")
        previous, self.mode = self.mode, mode
        if previous != mode:
            log.info("engine.mode_switched", mode=mode, previous=previous, reason=reason)
            self.publish(ev.ModeSwitched(ts=now, mode=mode, previous=previous, reason=reason,
                                         agent=agent_name(agent)))  # fmt: skip
            self._check_overflow(now)
        return {"mode": mode, "previous": previous}

    # --- dialplan -------------------------------------------------------------------------------------

    def swap_dialplan(self, plan: Dialplan, now: float, *, reason: str = "reload") -> None:
        """Atomic swap; transfers in progress keep the rule object they started with."""
        self.plan = plan
        self.publish(ev.DialplanReloaded(ts=now, files=tuple(plan.sources), reason=reason))
        if self.mode not in (set(plan.modes) or {plan.start_mode}):
            self.set_mode(plan.start_mode, now, reason="reload")
        self._check_overflow(now)

    def reject_dialplan(self, problems: Sequence[str], now: float, *, reason: str = "reload") -> None:
        self.publish(ev.DialplanRejected(ts=now, reason=reason, problems=tuple(problems)))

    # --- status ---------------------------------------------------------------------------------------

    def status(self, call_id: str | None = None, hotline: str | None = None) -> dict[str, Any]:
        transfers = [t.describe() for t in self.transfers.values()
                     if (call_id is None or t.call_id == call_id)
                     and (hotline is None or hotline in (t.from_hotline, t.to_hotline))]  # fmt: skip
        out = {
            "mode": self.mode,
            "ami_connected": self.connected,
            "dialplan": list(self.plan.sources),
            "overflow_active": self.overflow.active,
            "transfers": transfers,
        }
        if call_id is not None:
            out["call"] = self._call_details(call_id)
        return out

    def _call_details(self, call_id: str) -> dict[str, Any] | None:
        """What the PBX picture says about one live call (None: no such call now)."""
        call = self.view.calls.get(call_id)
        if call is None:
            return None
        channels = [ch for uid in sorted(call.channels) if (ch := self.view.channel(uid)) is not None]
        return {"call_id": call.call_id, "hotline": call.hotline, "state": str(call.state.value),
                "caller_num": call.caller_num, "caller_channel": call.caller_channel, "agent": call.agent,
                "queue": call.queue, "answered": call.answered is not None,
                "channels": [ch.name for ch in channels]}  # fmt: skip
