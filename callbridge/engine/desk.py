"""The decisions made on request: start a transfer (DTMF key or command), complete, cancel, leave (pure).

One path for both sources: idempotent repeats answered from the registry, the request authorised and
its actions built once (:func:`callbridge.engine.requests.prepare_transfer`), a refusal published as
``transfer.refused``. The commands that act on a running transfer check that it is the sender's and
of the right mode. Effects go to the engine's sink; nothing here awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from callbridge.engine import conference as conf
from callbridge.engine import events as ev
from callbridge.engine import transfer as tx
from callbridge.engine.authz import agent_name
from callbridge.engine.requests import PreparedTransfer, TransferRequest, prepare_transfer, start_actions
from callbridge.engine.transfer import Transfer, TState
from callbridge.errors import CommandError

if TYPE_CHECKING:
    from callbridge.dialplan.plan import Dialplan
    from callbridge.engine.authz import CallView
    from callbridge.engine.effects import EffectSink
    from callbridge.engine.transfers import Transfers

log = structlog.get_logger("callbridge.engine")


class TransferDesk:
    """Starts transfers into ``transfers`` and acts on them, writing effects to ``out``."""

    __slots__ = ("_new_id", "out", "transfers", "view")

    def __init__(self, transfers: Transfers, view: CallView, out: EffectSink, new_id: Callable[[], str]) -> None:
        self.transfers = transfers
        self.view = view
        self.out = out
        self._new_id = new_id

    def request(self, req: TransferRequest, plan: Dialplan, mode: str, now: float) -> tuple[Transfer, bool]:
        """Authorise and start ``req`` under ``plan`` in ``mode``: the transfer, and whether it is a repeat.

        Raises :class:`CommandError` (the refusal is published, nothing else changes)."""
        agent = agent_name(req.agent)  # PJSIP/agent1001 and agent1001 alike
        if agent != req.agent:
            req = dataclasses.replace(req, agent=agent)
        if req.idempotency_key is not None:
            repeated = self.transfers.by_key(req.idempotency_key)
            if repeated is not None:
                log.info("transfer.duplicate", transfer_id=repeated.id, key=req.idempotency_key)
                return repeated, True
        try:
            prepared = prepare_transfer(self.view, plan, mode, req, now, busy=self.transfers.active_on_call,
                                        new_id=self._new_id)  # fmt: skip
        except CommandError as exc:
            self.out.publish(ev.TransferRefused(ts=now, call_id=req.call_id, agent=req.agent, reason=exc.code,
                                                to_hotline=req.to_hotline or "", source=req.source,
                                                summary=str(exc)))  # fmt: skip
            raise
        self.start(prepared.transfer, now, prepared)
        return prepared.transfer, False

    def start(self, t: Transfer, now: float, prepared: PreparedTransfer | None = None) -> None:
        """Start ``t`` with the actions :func:`prepare_transfer` built and checked (built here without)."""
        if prepared is None:
            prepared = PreparedTransfer(t, start_actions(t))
        self.transfers.add(t)
        # the transition's log line and the domain event come after the batch: the interpreter writes the
        # first action before it renders log lines or hands events to the sinks
        fields = tx.transition(t, TState.SENDING, now, t.source)
        self.out.send(prepared.first_batch, f"xfer:{t.id}:start")
        self.out.publish(t.event(ev.TransferRequested, now, source=t.source))
        self.out.log_later(tx.TRANSITION_EVENT, logger="callbridge.engine.transfer", **fields)

    def own_transfer(self, call_id: str, agent: str, transfer_id: str | None, modes: tuple[str, ...]) -> Transfer:
        """The running transfer a command acts on: on ``call_id``, the sender's, in one of ``modes``."""
        t = self.transfers.get(transfer_id) if transfer_id else self.transfers.active_on_call(call_id)
        if t is None or t.call_id != call_id or t.done:
            raise CommandError("no_transfer", f"no transfer in progress on call {call_id}")
        if agent_name(t.agent) != agent_name(agent):
            raise CommandError("not_a_party", f"transfer {t.id} belongs to {t.agent}, not {agent}")
        if t.mode not in modes:
            raise CommandError("wrong_mode", f"transfer {t.id} is {t.mode}; this needs {' or '.join(modes)}")
        return t

    def complete(self, call_id: str, agent: str, transfer_id: str | None) -> dict[str, Any]:
        t = self.own_transfer(call_id, agent, transfer_id, ("attended",))
        if not t.route_channel:
            # no consultation leg: hanging the agent up would leave the caller alone (Asterisk hangs up)
            raise CommandError("not_consulting", f"transfer {t.id} has no consultation leg to hand the caller to")
        self.out.send(tx.complete_attended(t), f"xfer:{t.id}:complete")
        return t.describe()

    def cancel(self, call_id: str, agent: str, transfer_id: str | None) -> dict[str, Any]:
        t = self.own_transfer(call_id, agent, transfer_id, ("attended",))
        t.last_failure = "cancelled"  # the reason when the consultation is seen ending before the reply (a cut)
        self.out.send(tx.cancel_attended(t), f"xfer:{t.id}:cancel")
        return t.describe()

    def leave(self, call_id: str, agent: str) -> dict[str, Any]:
        t = self.own_transfer(call_id, agent, None, ("threeway",))
        if t.agent_left:
            return {**t.describe(), "duplicate": True}
        self.out.send(conf.leave_room(t), f"xfer:{t.id}:leave")
        return t.describe()
