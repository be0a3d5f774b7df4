"""What the agent consoles show, built from the domain events alone (pure: events in, views out).

One :class:`ConsoleState` per daemon, fed every event batch; :meth:`ConsoleState.view` is the picture
of one signed-in desk (agent and hotline): its current call, the hand-overs coming to its hotline (the
screen pop, from ``transfer.requested`` — which the engine emits before the destination rings), the
ones it sent with the receiving side's feedback and, for a hand-over to another centre, that centre's
word on the call (``handover.answered``: by whom after how long; ``handover.abandoned``: the caller gave
up there; ``handover.failed``), and for a supervisor the queues with their waiting callers, the mode and
the nuisance list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callbridge.domain import DomainEvent

#: How many finished hand-overs each hotline keeps on screen.
RECENT = 20
#: Transfer event type → the state shown for the hand-over.
TRANSFER_STATES = {
    "transfer.requested": "requested", "transfer.ringing": "ringing", "transfer.answered": "answered",
    "transfer.completed": "completed", "transfer.failed": "failed", "transfer.returned": "returned",
    "transfer.refused": "refused", "transfer.backup_line": "backup_line", "threeway.started": "threeway",
    "threeway.agent_left": "agent_left", "handover.failed": "failed",
}  # fmt: skip
PENDING = ("requested", "ringing", "backup_line", "threeway", "bound")  # bound: from another centre, not answered
#: The sending side's own end of a hand-over that did not reach the destination.
FAILED = ("failed", "returned", "refused")
#: The receiving centre's word on the call it bound (its own event there, taken in over the link at the sender).
REACHED = {"handover.answered": "answered", "handover.abandoned": "abandoned"}


def endpoint(agent: str) -> str:
    """``PJSIP/agent1001`` → ``agent1001``."""
    return agent.split("/", 1)[-1]


@dataclass(slots=True)
class CallView:
    call_id: str
    hotline: str
    caller_num: str = ""
    caller_name: str = ""
    offered_ts: float = 0.0
    answered_ts: float | None = None
    agent: str = ""  # who talks with the caller now
    ringing: dict[str, float] = field(default_factory=dict)  # agent → since
    queue: str = ""
    queued_ts: float | None = None
    waiting: bool = False
    priority: int = 0
    transfer_id: str = ""  # the latest hand-over of this call

    def wait_s(self, now: float) -> float:
        start = self.queued_ts if self.queued_ts is not None else self.offered_ts
        return max(0.0, (self.answered_ts if self.answered_ts is not None else now) - start)


@dataclass(slots=True)
class HandoverView:
    transfer_id: str
    call_id: str
    from_hotline: str
    to_hotline: str
    agent: str  # sender
    caller_num: str = ""
    category: str = ""
    ticket: str = ""
    summary: str = ""
    mode: str = ""
    state: str = "requested"
    requested_ts: float = 0.0
    answered_by: str = ""
    reason: str = ""
    feedback: list[dict[str, Any]] = field(default_factory=list)
    match: str = ""  # from another centre: how this centre's call was bound (header | caller_number)
    reached: str = ""  # the receiving centre's word on the bound call: answered | abandoned
    reached_agent: str = ""  # its agent who answered
    reached_wait_s: float | None = None  # how long the caller waited there (to the answer, or to the end)
    reached_reason: str = ""  # how an abandoned call ended there (abandoned_in_queue, hangup …)

    def status(self) -> str:
        """The sending desk's one word: the receiving centre's on the call (answered, abandoned), else the
        hand-over failed (failed, returned, refused), waits there (bound at the other centre, no agent yet),
        or is sent (the sending side's own state says how far it got)."""
        if self.reached:
            return self.reached
        if self.state in FAILED:
            return "failed"
        return "waiting" if self.match else "sent"

    def reached_dict(self) -> dict[str, Any] | None:
        if not self.reached:
            return None
        return {"outcome": self.reached, "agent": self.reached_agent, "wait_s": self.reached_wait_s,
                "reason": self.reached_reason}  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id, "call_id": self.call_id, "from_hotline": self.from_hotline,
            "to_hotline": self.to_hotline, "agent": self.agent, "caller_num": self.caller_num,
            "category": self.category, "ticket": self.ticket, "summary": self.summary, "mode": self.mode,
            "state": self.state, "requested_ts": self.requested_ts, "answered_by": self.answered_by,
            "reason": self.reason, "feedback": list(self.feedback), "match": self.match, "status": self.status(),
            "reached": self.reached_dict(),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Desk:
    """A signed-in console: who and for which hotline."""

    agent: str
    hotline: str
    role: str = "agent"


class ConsoleState:
    def __init__(self, mode: str = "") -> None:
        self.calls: dict[str, CallView] = {}
        self.handovers: dict[str, HandoverView] = {}
        self.nuisance: dict[str, dict[str, Any]] = {}
        self.mode = mode
        #: bumped by every event: a stream sends a view again only when something changed
        self.version = 0

    # --- feeding -------------------------------------------------------------------------------------

    def feed(self, events: Iterable[DomainEvent]) -> None:
        for e in events:
            self.version += 1
            handler = _HANDLERS.get(e.TYPE)
            if handler is not None:
                handler(self, e, e.data())
            elif e.TYPE in TRANSFER_STATES:
                self.on_transfer(e, e.data())

    def _call(self, e: DomainEvent) -> CallView | None:
        if not e.call_id:
            return None
        call = self.calls.get(e.call_id)
        if call is None and e.TYPE == "call.offered":
            call = self.calls[e.call_id] = CallView(e.call_id, e.hotline or "", offered_ts=e.ts)
        return call

    def on_offered(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None:
            call.caller_num = str(d.get("caller_num") or call.caller_num)
            call.caller_name = str(d.get("caller_name") or call.caller_name)

    def on_queued(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None:
            call.queue, call.waiting = str(d.get("queue") or call.queue), True
            call.queued_ts = call.queued_ts if call.queued_ts is not None else e.ts

    def on_left_queue(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None:
            call.waiting = False

    def on_priority(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None:
            call.priority = int(d.get("priority") or 0)

    def on_ringing(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None and d.get("agent"):
            call.ringing[endpoint(str(d["agent"]))] = e.ts

    def on_answered(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        call = self._call(e)
        if call is not None:
            call.agent, call.answered_ts, call.waiting = endpoint(str(d.get("agent") or "")), e.ts, False
            call.ringing.clear()
            h = self.handovers.get(call.transfer_id)
            if h is not None and h.state == "bound":  # a hand-over from another centre, answered here
                h.state, h.answered_by = "answered", call.agent

    def on_ended(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        if e.call_id:
            self.calls.pop(e.call_id, None)

    def on_transfer(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        xfer = str(d.get("transfer_id") or "")
        if not xfer:
            return
        h = self.handovers.get(xfer)
        if h is None:
            h = self.handovers[xfer] = HandoverView(
                xfer, e.call_id or "", str(d.get("from_hotline") or e.hotline or ""), str(d.get("to_hotline") or ""),
                endpoint(str(d.get("agent") or "")), requested_ts=e.ts,
            )  # fmt: skip
            self._forget_old()
        for key in ("caller_num", "category", "ticket", "summary", "mode", "reason"):
            if d.get(key):
                setattr(h, key, str(d[key]))
        if d.get("answered_by"):
            h.answered_by = endpoint(str(d["answered_by"]))
        h.state = TRANSFER_STATES.get(e.TYPE, h.state)
        call = self.calls.get(h.call_id)
        if call is not None:
            call.transfer_id = xfer

    def on_bound(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        """A hand-over from another centre bound to a call here: the receiving agent's screen pop (at the
        sending centre, the peer's word on its own hand-over: only the match is added)."""
        xfer = str(d.get("transfer_id") or "")
        new = xfer not in self.handovers
        self.on_transfer(e, d)
        h = self.handovers.get(xfer)
        if h is not None:
            h.match = str(d.get("match") or h.match)
            h.state = "bound" if new else h.state

    def on_feedback(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        h = self.handovers.get(str(d.get("transfer_id") or ""))
        if h is not None:
            h.feedback.append({"ts": e.ts, "outcome": d.get("outcome", ""), "reason": d.get("reason", ""),
                               "agent": d.get("agent", ""), "ticket": d.get("ticket", "")})  # fmt: skip

    def on_reached(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        """The receiving centre's word on the call bound to a hand-over: one of its agents answered it, or it
        ended there before any did. The first word stands (as in ``report --centres``)."""
        h = self.handovers.get(str(d.get("transfer_id") or ""))
        if h is None or h.reached:
            return
        h.reached = REACHED[e.TYPE]
        h.reached_agent = endpoint(str(d.get("answered_agent") or ""))
        wait = d.get("wait_s")
        h.reached_wait_s = float(wait) if isinstance(wait, int | float) else None
        h.reached_reason = str(d.get("reason") or "")
        if h.state == "bound" and h.reached == "abandoned":  # the receiver's pop: nobody will answer it now
            h.state = "abandoned"

    def on_nuisance(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        num = str(d.get("caller_num") or "")
        if num:
            self.nuisance[num] = {"caller_num": num, "count": d.get("count", 0), "ts": e.ts,
                                  "hotlines": list(d.get("hotlines_called") or ())}  # fmt: skip

    def on_command(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        """An attended transfer the agent completed is over for the sender's desk (the PBX tells no event)."""
        h = self.handovers.get(str(d.get("transfer_id") or ""))
        if h is not None and d.get("verb") == "complete" and d.get("outcome") == "ok":
            h.state = "completed"

    def on_released(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        self.nuisance.pop(str(d.get("caller_num") or ""), None)

    def on_mode(self, e: DomainEvent, d: Mapping[str, Any]) -> None:
        self.mode = str(d.get("mode") or self.mode)

    def _forget_old(self) -> None:
        done = [h for h in self.handovers.values() if h.state not in PENDING]
        for h in done[: max(0, len(done) - RECENT * 8)]:
            del self.handovers[h.transfer_id]

    # --- views ---------------------------------------------------------------------------------------

    def current_call(self, agent: str) -> CallView | None:
        talking = [c for c in self.calls.values() if c.agent == agent]
        if talking:
            return max(talking, key=lambda c: c.answered_ts or 0.0)
        rung = [c for c in self.calls.values() if agent in c.ringing]
        return max(rung, key=lambda c: c.ringing[agent]) if rung else None

    def outgoing(self, agent: str) -> HandoverView | None:
        """The desk's own hand-over still under way: pending, or (attended, three-way) answered and not done."""
        mine = [h for h in self.handovers.values() if h.agent == agent and h.call_id in self.calls
                and (h.state in PENDING or (h.state == "answered" and h.mode in ("attended", "threeway")))]  # fmt: skip
        return max(mine, key=lambda h: h.requested_ts) if mine else None

    def view(self, desk: Desk, now: float) -> dict[str, Any]:
        sending = self.outgoing(desk.agent)
        call = self.current_call(desk.agent) or (self.calls.get(sending.call_id) if sending is not None else None)
        out: dict[str, Any] = {"mode": self.mode, "call": None, "received_from": None, "outgoing": None}
        if call is not None:
            out["call"] = self._call_dict(call, desk, now, sending)
            h = self.handovers.get(call.transfer_id)
            if h is not None and h.to_hotline == desk.hotline:
                out["received_from"] = h.as_dict()
        if sending is not None:
            out["outgoing"] = sending.as_dict()
        mine = list(self.handovers.values())
        out["incoming"] = [h.as_dict() for h in mine if h.to_hotline == desk.hotline and h.state in PENDING]
        out["received"] = [h.as_dict() for h in mine if h.to_hotline == desk.hotline
                           and h.state in ("answered", "completed", "agent_left")][-RECENT:]  # fmt: skip
        out["sent"] = [h.as_dict() for h in mine if h.from_hotline == desk.hotline][-RECENT:]
        if desk.role == "supervisor":
            out["queues"] = self.queues(now)
            out["nuisance"] = sorted(self.nuisance.values(), key=lambda n: -float(n["ts"]))
        return out

    def _call_dict(self, call: CallView, desk: Desk, now: float, sending: HandoverView | None) -> dict[str, Any]:
        h = self.handovers.get(call.transfer_id)
        state = "ringing"
        if sending is not None and sending.call_id == call.call_id:
            state = "transferring"
        elif call.agent == desk.agent:
            state = "talking"
        return {
            "call_id": call.call_id, "hotline": call.hotline, "caller_num": call.caller_num,
            "caller_name": call.caller_name, "wait_s": round(call.wait_s(now), 1), "state": state,
            "category": h.category if h is not None else "", "nuisance": call.caller_num in self.nuisance,
            "priority": call.priority,
        }  # fmt: skip

    def queues(self, now: float) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for c in self.calls.values():
            if c.waiting and c.queue:
                out.setdefault(c.queue, []).append({
                    "call_id": c.call_id, "hotline": c.hotline, "caller_num": c.caller_num,
                    "wait_s": round(c.wait_s(now), 1), "priority": c.priority,
                    "nuisance": c.caller_num in self.nuisance,
                })  # fmt: skip
        for waiting in out.values():
            waiting.sort(key=lambda w: (-int(w["priority"]), -float(w["wait_s"])))
        return dict(sorted(out.items()))


_HANDLERS = {
    "call.offered": ConsoleState.on_offered, "call.caller_changed": ConsoleState.on_offered,
    "call.queued": ConsoleState.on_queued, "queue.joined": ConsoleState.on_queued,
    "queue.left": ConsoleState.on_left_queue, "queue.abandoned": ConsoleState.on_left_queue,
    "queue.priority_set": ConsoleState.on_priority, "call.ringing": ConsoleState.on_ringing,
    "call.answered": ConsoleState.on_answered, "call.ended": ConsoleState.on_ended,
    "handover.feedback": ConsoleState.on_feedback, "handover.bound": ConsoleState.on_bound,
    "handover.answered": ConsoleState.on_reached, "handover.abandoned": ConsoleState.on_reached,
    "nuisance.flagged": ConsoleState.on_nuisance,
    "nuisance.released": ConsoleState.on_released,
    "mode.switched": ConsoleState.on_mode, "command.received": ConsoleState.on_command,
}  # fmt: skip
