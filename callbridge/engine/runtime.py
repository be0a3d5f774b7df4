"""The engine: pure decisions over the call tracker's picture (sans-IO).

Inputs are method calls — AMI events with the domain events the tracker derived from them, commands,
timer fires, action results, connection changes, dialplan swaps. Outputs are :mod:`effects`, taken
with :meth:`Engine.drain` and executed by :mod:`callbridge.engine.service`. Nothing here awaits.

How transfers follow the PBX is in :mod:`callbridge.engine.observe`; this module holds the decisions
made on request: authorisation, idempotency, races, modes, reloads, overflow and nuisance.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from callbridge.ami.actions import Action, Hangup, QueueWithdrawCaller, Redirect, Setvar
from callbridge.ami.event_types import AmiEvent
from callbridge.calls import events as ce
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.engine import conference as conf
from callbridge.engine import events as ev
from callbridge.engine import handover
from callbridge.engine import transfer as tx
from callbridge.engine.authz import CallView, agent_name, hotline_of, interface_of
from callbridge.engine.dtmf import DigitBuffers
from callbridge.engine.effects import ActionResult, CancelTimer, Effect, Log, Publish, SendActions, StartTimer
from callbridge.engine.nuisance import NuisanceWatch
from callbridge.engine.observe import Observer
from callbridge.engine.overflow import OverflowWatch
from callbridge.engine.queues import all_stats, priority_change
from callbridge.engine.requests import PreparedTransfer, TransferRequest, prepare_transfer, start_actions
from callbridge.engine.transfer import Transfer, TState
from callbridge.errors import CommandError

log = structlog.get_logger("callbridge.engine")

__all__ = ["Engine", "TransferRequest", "hotline_of"]

OVERFLOW_TICK = "overflow:tick"
OVERFLOW_TICK_S = 1.0


def _new_id() -> str:
    """12 random hex digits (48 bits, as ``uuid4().hex[:12]`` was, at a fifth of its cost)."""
    return os.urandom(6).hex()


class Engine(Observer):
    def __init__(
        self,
        plan: Dialplan,
        view: CallView,
        *,
        new_id: Callable[[], str] = _new_id,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.view = view
        self.mode = mode or plan.start_mode
        self._new_id = new_id
        self._idempotency: dict[str, str] = {}  # key → transfer id
        self._digits = DigitBuffers()
        self._codes_cache: dict[tuple[str, str], frozenset[str]] = {}
        self._codes_plan: Dialplan | None = None  # the plan the cache was filled from
        self._nuisance = NuisanceWatch()
        self._overflow = OverflowWatch()
        self._ticking = False
        self.connected = False

    def forget(self, t: Transfer) -> None:
        super().forget(t)
        if t.idempotency_key is not None:
            self._idempotency.pop(t.idempotency_key, None)

    # --- effects ------------------------------------------------------------------------------------

    def drain(self) -> list[Effect]:
        out, self.out = self.out, []
        return out

    def publish(self, event: DomainEvent) -> None:
        self.out.append(Publish(event))

    def log_later(self, event: str, *, logger: str = "callbridge.engine", **fields: Any) -> None:
        """An INFO line the interpreter writes after this decision's first action (see :class:`Log`)."""
        self.out.append(Log(event, fields, logger))

    def send(self, actions: Sequence[Action], tag: str = "") -> None:
        for a in actions:
            target = self.view.channel(a.channel) if isinstance(a, Hangup) else None
            # a three-way call-in leg callbridge originated has its own Linkedid, so the tracker calls it a caller
            ours = target is not None and self._by_leg(target.uniqueid, finished=True) is not None
            if target is not None and target.role == "caller" and not ours:
                # structural guarantee: callbridge never hangs up a caller (an emergency caller above all)
                log.error("engine.refused_to_hang_up_caller", channel=target.name, tag=tag)
                return
        self.out.append(SendActions(tuple(actions), tag))

    # --- inputs: PBX --------------------------------------------------------------------------------

    def on_ami_event(self, event: AmiEvent, derived: Sequence[DomainEvent], now: float) -> None:
        """One AMI event, after the tracker applied it (``derived`` = its domain events)."""
        for d in derived:
            if isinstance(d, ce.CallDtmf):
                self._on_digit(d, now)
            elif isinstance(d, ce.CallOffered):
                self._on_offered(d, now)
        self.observe(event, now)
        if type(event).__name__.startswith(("Queue", "Agent")):
            self._check_overflow(now)

    def on_connected(self, host: str, now: float) -> None:
        self.connected = True
        self.publish(ev.AmiConnectedEvent(ts=now, host=host))

    def on_lost(self, reason: str, now: float) -> None:
        self.connected = False
        self.publish(ev.AmiLostEvent(ts=now, reason=reason))

    def on_resynced(self, now: float) -> None:
        """The tracker was rebuilt from the PBX: reconcile transfers (never repeating an action)."""
        for t in list(self.active()):
            self.reconcile(t, now)
        self._check_overflow(now)

    def on_action_result(self, result: ActionResult, now: float) -> None:
        kind, _, rest = result.tag.partition(":")
        if kind != "xfer":
            if result.outcome != "ok":
                log.warning("engine.action_failed", tag=result.tag, outcome=result.outcome, error=result.error)
            return
        transfer_id, _, step = rest.partition(":")
        t = self.transfers.get(transfer_id)
        if t is not None:
            self.action_result(t, step, result, now)

    def on_timer(self, key: str, now: float) -> None:
        kind, _, name = key.partition(":")
        if kind == "dtmf":
            dropped = self._digits.expire(name)
            log.info("dtmf.timeout", channel=name, dropped=dropped)
        elif kind == handover.TIMER_KIND:
            self.handover_expired(name, now)
        elif key == OVERFLOW_TICK:
            self._ticking = False
            self._check_overflow(now)

    # --- DTMF -----------------------------------------------------------------------------------------

    def _on_digit(self, d: ce.CallDtmf, now: float) -> None:
        if d.party == "caller" or not d.call_id:
            return
        interface = interface_of(d.channel)
        hotline = self.plan.hotline_of_agent(interface)
        if hotline is None:
            return
        result = self._digits.press(d.channel, d.digit, self._codes(hotline.number))
        key = f"dtmf:{d.channel}"
        if result.waiting:
            self.out.append(StartTimer(key, self.plan.engine.dtmf_interdigit_timeout))
            return
        self.out.append(CancelTimer(key))
        if result.code is None:
            return
        # written after the transfer's first action (Log effect): this is the one-key latency path
        self.log_later("dtmf.code", channel=d.channel, code=result.code, call_id=d.call_id)
        req = TransferRequest(call_id=d.call_id, agent=agent_name(interface), code=result.code, source="dtmf",
                              agent_channel=d.channel)  # fmt: skip
        try:
            self._request(req, now)
        except CommandError as exc:
            self.log_later("dtmf.refused", channel=d.channel, code=exc.code, reason=str(exc))  # after dtmf.code

    def _codes(self, hotline: str) -> frozenset[str]:
        """The hotline's one-key codes in the current mode, computed once per dialplan and mode."""
        if self._codes_plan is not self.plan:  # a reload (or a test) swapped the plan
            self._codes_cache.clear()
            self._codes_plan = self.plan
        key = (hotline, self.mode)
        codes = self._codes_cache.get(key)
        if codes is None:
            codes = self._codes_cache[key] = self.plan.codes_for(hotline, self.mode)
        return codes

    # --- commands -------------------------------------------------------------------------------------

    def request_transfer(self, req: TransferRequest, now: float) -> dict[str, Any]:
        """Authorise and start a transfer. Raises :class:`CommandError` (and publishes the refusal)."""
        t, duplicate = self._request(req, now)
        return {**t.describe(), "duplicate": True} if duplicate else t.describe()

    def _request(self, req: TransferRequest, now: float) -> tuple[Transfer, bool]:
        """:meth:`request_transfer` without the description the DTMF path has no use for."""
        agent = agent_name(req.agent)  # PJSIP/agent1001 and agent1001 alike
        if agent != req.agent:
            req = dataclasses.replace(req, agent=agent)
        if req.idempotency_key is not None and req.idempotency_key in self._idempotency:
            t = self.transfers[self._idempotency[req.idempotency_key]]
            log.info("transfer.duplicate", transfer_id=t.id, key=req.idempotency_key)
            return t, True
        try:
            prepared = self._authorised(req, now)
        except CommandError as exc:
            self.publish(ev.TransferRefused(ts=now, call_id=req.call_id, agent=req.agent, reason=exc.code,
                                            to_hotline=req.to_hotline or "", source=req.source,
                                            summary=str(exc)))  # fmt: skip
            raise
        t = prepared.transfer
        if req.idempotency_key is not None:
            self._idempotency[req.idempotency_key] = t.id
        self.start(t, now, prepared)
        return t, False

    def _authorised(self, req: TransferRequest, now: float) -> PreparedTransfer:
        return prepare_transfer(self.view, self.plan, self.mode, req, now, busy=self.active_on_call,
                                new_id=self._new_id)  # fmt: skip

    def start(self, t: Transfer, now: float, prepared: PreparedTransfer | None = None) -> None:
        """Start ``t`` with the actions :func:`prepare_transfer` built and checked (built here without)."""
        if prepared is None:
            prepared = PreparedTransfer(t, start_actions(t))
        self.add(t)
        # the transition's log line and the domain event come after the batch: the interpreter writes the
        # first action before it renders log lines or hands events to the sinks
        fields = tx.transition(t, TState.SENDING, now, t.source)
        self.send(prepared.first_batch, f"xfer:{t.id}:start")
        self.publish(t.event(ev.TransferRequested, now, source=t.source))
        self.log_later(tx.TRANSITION_EVENT, logger="callbridge.engine.transfer", **fields)

    def _own_transfer(self, call_id: str, agent: str, transfer_id: str | None, modes: tuple[str, ...]) -> Transfer:
        t = self.transfers.get(transfer_id) if transfer_id else self.active_on_call(call_id)
        if t is None or t.call_id != call_id or t.done:
            raise CommandError("no_transfer", f"no transfer in progress on call {call_id}")
        if agent_name(t.agent) != agent_name(agent):
            raise CommandError("not_a_party", f"transfer {t.id} belongs to {t.agent}, not {agent}")
        if t.mode not in modes:
            raise CommandError("wrong_mode", f"transfer {t.id} is {t.mode}; this needs {' or '.join(modes)}")
        return t

    def complete(self, call_id: str, agent: str, transfer_id: str | None, now: float) -> dict[str, Any]:
        t = self._own_transfer(call_id, agent, transfer_id, ("attended",))
        if not t.route_channel:
            # no consultation leg: hanging the agent up would leave the caller alone (Asterisk hangs up)
            raise CommandError("not_consulting", f"transfer {t.id} has no consultation leg to hand the caller to")
        self.send(tx.complete_attended(t), f"xfer:{t.id}:complete")
        return t.describe()

    def cancel(self, call_id: str, agent: str, transfer_id: str | None, now: float) -> dict[str, Any]:
        t = self._own_transfer(call_id, agent, transfer_id, ("attended",))
        t.last_failure = "cancelled"  # the reason when the consultation is seen ending before the reply (a cut)
        self.send(tx.cancel_attended(t), f"xfer:{t.id}:cancel")
        return t.describe()

    def leave(self, call_id: str, agent: str, now: float) -> dict[str, Any]:
        t = self._own_transfer(call_id, agent, None, ("threeway",))
        if t.agent_left:
            return {**t.describe(), "duplicate": True}
        self.send(conf.leave_room(t), f"xfer:{t.id}:leave")
        return t.describe()

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

    # --- nuisance -------------------------------------------------------------------------------------

    def _on_offered(self, d: ce.CallOffered, now: float) -> None:
        policy = self.plan.nuisance
        mode = self.plan.modes.get(self.mode)
        if policy is None or (mode is not None and not mode.nuisance) or not d.hotline:
            return
        if d.call_id and self._by_leg(d.call_id, finished=True) is not None:
            return  # a three-way leg callbridge called in presents the citizen's number: not another call
        verdict = self._nuisance.offered(policy, d.caller_num, d.hotline, now)
        if verdict is None:
            return
        actions: list[Action] = []
        if "tag" in policy.actions:
            actions.append(Setvar(channel=d.channel, variable="__CB_NUISANCE", value=str(verdict.count)))
        if "announcement" in policy.actions:
            actions.append(Redirect(channel=d.channel, context="cb-announce", exten=d.hotline))
        notify = ("110",) if "notify_110" in policy.actions else ()
        log.warning("nuisance.flagged", caller_num=d.caller_num, count=verdict.count, hotline=d.hotline)
        self.publish(ev.NuisanceFlagged(ts=now, call_id=d.call_id, hotline=d.hotline, caller_num=d.caller_num,
                                        count=verdict.count, window_s=float(policy.window),
                                        action=",".join(policy.actions), hotlines_called=verdict.hotlines,
                                        notify=notify))  # fmt: skip
        if actions:
            self.send(actions, "nuisance")

    # --- overflow -------------------------------------------------------------------------------------

    def _check_overflow(self, now: float) -> None:
        rules = self.plan.overflows_in(self.mode) if self.mode in self.plan.modes or not self.plan.modes else ()
        if not rules and not self._overflow.active:
            return
        names = {o.queue for o in rules} | {o.queue for o in self._overflow.active.values()}
        stats = all_stats(getattr(self.view, "queues", {}), names, now)
        for d in self._overflow.evaluate(tuple(rules), stats):
            owner = self.plan.hotline_of_queue(d.overflow.queue)
            hotline = owner.number if owner is not None else ""
            s = d.stats
            log.info("overflow." + ("started" if d.change == "start" else "ended"), overflow=d.overflow.id,
                     queue=d.overflow.queue, reason=d.reason, waiting=s.waiting, free_agents=s.free_agents,
                     longest_wait_s=round(s.longest_wait_s, 1))  # fmt: skip
            if d.change == "start":
                actions: list[Action] = [Setvar(variable=f"CB_OVERFLOW_{hotline}", value=d.overflow.id)]
                actions += [QueueWithdrawCaller(queue=d.overflow.queue, caller=c, withdraw_info=d.overflow.id)
                            for c in self._overflow.withdraw_candidates(d.overflow, s)]  # fmt: skip
                self.send(actions, "overflow")
                self.publish(ev.QueueOverflowStarted(ts=now, hotline=hotline or None, queue=d.overflow.queue,
                                                     target=d.overflow.to_queue or d.overflow.to_trunk or "",
                                                     reason=d.reason, waiting=s.waiting,
                                                     longest_wait_s=round(s.longest_wait_s, 1),
                                                     free_agents=s.free_agents))  # fmt: skip
            else:
                self.send([Setvar(variable=f"CB_OVERFLOW_{hotline}", value="")], "overflow")
                self.publish(ev.QueueOverflowEnded(ts=now, hotline=hotline or None, queue=d.overflow.queue,
                                                   reason=d.reason, waiting=s.waiting,
                                                   longest_wait_s=round(s.longest_wait_s, 1),
                                                   free_agents=s.free_agents))  # fmt: skip
        if (rules or self._overflow.active) and not self._ticking:
            # the longest wait grows without any event: look again every second while a rule is active
            self._ticking = True
            self.out.append(StartTimer(OVERFLOW_TICK, OVERFLOW_TICK_S))

    # --- status ---------------------------------------------------------------------------------------

    def status(self, call_id: str | None = None, hotline: str | None = None) -> dict[str, Any]:
        transfers = [t.describe() for t in self.transfers.values()
                     if (call_id is None or t.call_id == call_id)
                     and (hotline is None or hotline in (t.from_hotline, t.to_hotline))]  # fmt: skip
        out = {
            "mode": self.mode,
            "ami_connected": self.connected,
            "dialplan": list(self.plan.sources),
            "overflow_active": sorted(self._overflow.active),
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
