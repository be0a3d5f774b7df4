"""Bind an inbound call to the hand-over another centre published (pure: events in, events out).

The other centre's daemon publishes ``transfer.requested`` (ticket, sending agent, category, summary)
before its PBX dials the inter-centre trunk; this centre's daemon takes it in over the bridged broker
(:meth:`HandoverBinder.remote`). When an inbound call of one of this centre's hotlines queues
(``call.queued``, before any agent rings: the screen pop comes first), it is bound:

* by the ``X-Callbridge-Handover`` header read on the inbound leg (``CB_HANDOVER_IN``), ``match=header``;
* without a (valid) header — a peer PBX that strips it — by the caller's number among the unbound
  hand-overs to that hotline requested within ``window_s`` before the call, the latest first,
  ``match=caller_number``.

Either side may come first: a call whose hand-over data has not arrived yet (the broker bridge down)
waits, and is bound when the data arrives (a header one at any time, a number one within the window).
A hand-over the sending centre reports failed or returned before it was bound is ``handover.failed``.

The binding goes out right after the ``call.queued`` it answers, in the same batch (:meth:`HandoverBinder.
interleave`, run before the batch reaches any sink): an agent rung by the same AMI read is announced after it.
What became of a bound call here is told back too: an agent of this centre answered it
(``handover.answered``: who, and how long the caller waited here — this PBX answering the trunk is not it),
or it ended before any agent did (``handover.abandoned``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from callbridge.calls.numbers import CHINA
from callbridge.centres.events import HandoverAbandoned, HandoverAnswered, HandoverBound, HandoverFailed
from callbridge.centres.header import handover_id
from callbridge.domain import DomainEvent

#: Seconds between the other centre's ``transfer.requested`` and the inbound call for a number match.
WINDOW_S = 120.0
#: Hand-overs and waiting calls remembered (oldest forgotten first).
REMEMBER = 5_000
ENDED = ("transfer.failed", "transfer.returned")


@dataclass(frozen=True, slots=True)
class RemoteHandover:
    transfer_id: str
    remote_call_id: str
    from_hotline: str
    to_hotline: str
    caller_num: str
    sender: str
    category: str
    ticket: str
    summary: str
    ts: float


@dataclass(slots=True)
class CallOutcome:
    """What this centre saw of a call that is (or may become) bound: its first agent answer, a queue abandon."""

    answered_agent: str = ""
    wait_s: float = 0.0
    abandoned: bool = False


@dataclass(frozen=True, slots=True)
class WaitingCall:
    call_id: str
    hotline: str
    caller_num: str
    channel: str
    header: str | None
    ts: float


class HandoverBinder:
    """``remote(events)``: the other centre's events; calling it (an event sink): this centre's events."""

    def __init__(
        self,
        publish: Callable[[Sequence[DomainEvent]], None],
        *,
        hotlines: Callable[[], frozenset[str]],
        header_of: Callable[[str], str],
        centre: str,
        window_s: float = WINDOW_S,
        remember: int = REMEMBER,
        on_learn: Callable[[RemoteHandover], None] | None = None,
    ) -> None:
        self.publish = publish
        self.hotlines = hotlines
        self.header_of = header_of  # channel name -> raw CB_HANDOVER_IN ("" when none)
        self.centre = centre
        self.window_s = window_s
        self._remember = remember
        self.on_learn = on_learn  # a new hand-over is pending (before any binding it makes)
        self.pending: OrderedDict[str, RemoteHandover] = OrderedDict()  # transfer id -> unbound hand-over
        self.waiting: OrderedDict[str, WaitingCall] = OrderedDict()  # call id -> call without its data
        self.bound: OrderedDict[str, str] = OrderedDict()  # transfer id -> this centre's call id
        self._seen_calls: set[str] = set()  # calls already considered (a call queues again after a ring)
        #: bound call id -> its hand-over; call id (waiting or bound) -> what happened to it here (both until
        #: the call ends, the oldest forgotten first beyond ``remember``)
        self.of_call: OrderedDict[str, tuple[RemoteHandover, WaitingCall]] = OrderedDict()
        self._outcomes: OrderedDict[str, CallOutcome] = OrderedDict()
        self._match: OrderedDict[str, str] = OrderedDict()  # bound transfer id -> header | caller_number

    # --- the other centre -------------------------------------------------------------------------

    def remote(self, events: Sequence[DomainEvent]) -> None:
        out: list[DomainEvent] = []
        for e in events:
            if e.TYPE == "transfer.requested":
                self._learn(e, out)
            elif e.TYPE in ENDED:
                self._ended(e, out)
        if out:
            self.publish(out)

    def _learn(self, e: DomainEvent, out: list[DomainEvent]) -> None:
        d = e.data()
        xfer = handover_id(str(d.get("transfer_id") or ""))
        to = str(d.get("to_hotline") or "")
        if xfer is None or to not in self.hotlines() or xfer in self.bound or xfer in self.pending:
            return
        h = RemoteHandover(xfer, e.call_id or "", str(d.get("from_hotline") or ""), to,
                           str(d.get("caller_num") or ""), str(d.get("agent") or ""), str(d.get("category") or ""),
                           str(d.get("ticket") or ""), str(d.get("summary") or ""), e.ts)  # fmt: skip
        self.pending[xfer] = h
        _trim(self.pending, self._remember)
        if self.on_learn is not None:
            self.on_learn(h)
        for call in list(self.waiting.values()):  # a call that arrived first (the data was late)
            match = self._match_call(call, h)
            if match is not None:
                del self.waiting[call.call_id]
                out.append(self._bind(h, call, match))
                if self._outcomes.get(call.call_id, CallOutcome()).answered_agent:  # answered before its data came
                    out.append(self._answer_event(call.call_id, e.ts))
                return

    def _ended(self, e: DomainEvent, out: list[DomainEvent]) -> None:
        d = e.data()
        h = self.pending.pop(str(d.get("transfer_id") or ""), None)
        if h is None:
            return
        out.append(HandoverFailed(ts=e.ts, call_id=None, hotline=h.to_hotline, outcome=e.TYPE.split(".")[1],
                                  reason=str(d.get("reason") or ""), **handover_fields(h, self.centre)))  # fmt: skip

    # --- this centre ------------------------------------------------------------------------------

    def __call__(self, events: Sequence[DomainEvent]) -> None:
        """An event sink: what ``events`` lead to is published (after the batch they came in)."""
        out: list[DomainEvent] = []
        for e in events:
            self._after(e, out)
        if out:
            self.publish(out)

    def interleave(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """``events`` with what each leads to right behind it (a binding right after its ``call.queued``,
        before the ``call.ringing`` of the same batch): the order the sinks and subscribers see."""
        out: list[DomainEvent] = []
        for e in events:
            out.append(e)
            self._after(e, out)
        return out

    def _after(self, e: DomainEvent, out: list[DomainEvent]) -> None:
        call_id = e.call_id
        if not call_id:
            return
        if e.TYPE == "call.queued" and call_id not in self._seen_calls:
            self._arrived(e, out)
        elif e.TYPE == "call.answered" and (call_id in self.waiting or call_id in self.of_call):
            self._answered(e, call_id, out)
        elif e.TYPE == "queue.abandoned" and call_id in self._outcomes:
            self._outcomes[call_id].abandoned = True
        elif e.TYPE == "call.ended":
            self._ended_here(e, call_id, out)

    def _answered(self, e: DomainEvent, call_id: str, out: list[DomainEvent]) -> None:
        d = e.data()
        agent = str(d.get("agent") or "")
        seen = self._outcomes.setdefault(call_id, CallOutcome())
        if not agent or seen.answered_agent:
            return  # not a person (this PBX answering the trunk), or not the first answer
        seen.answered_agent, seen.wait_s = agent, float(d.get("wait_s") or 0.0)
        if call_id in self.of_call:
            out.append(self._answer_event(call_id, e.ts))

    def _answer_event(self, call_id: str, ts: float) -> HandoverAnswered:
        h, call = self.of_call[call_id]
        seen = self._outcomes[call_id]
        return HandoverAnswered(ts=ts, call_id=call_id, hotline=call.hotline, answered_agent=seen.answered_agent,
                                wait_s=round(seen.wait_s, 3), remote_call_id=h.remote_call_id,
                                match=self._match.get(h.transfer_id, ""),
                                **handover_fields(h, self.centre))  # fmt: skip

    def _ended_here(self, e: DomainEvent, call_id: str, out: list[DomainEvent]) -> None:
        bound = self.of_call.pop(call_id, None)
        seen = self._outcomes.pop(call_id, None) or CallOutcome()
        self.forget_call(call_id)
        if bound is None or seen.answered_agent:
            return
        h, call = bound
        reason = "abandoned_in_queue" if seen.abandoned else str(e.data().get("reason") or "hangup")
        out.append(HandoverAbandoned(ts=e.ts, call_id=call_id, hotline=call.hotline, reason=reason,
                                     wait_s=round(max(0.0, e.ts - call.ts), 3), remote_call_id=h.remote_call_id,
                                     match=self._match.get(h.transfer_id, ""),
                                     **handover_fields(h, self.centre)))  # fmt: skip

    def _arrived(self, e: DomainEvent, out: list[DomainEvent]) -> None:
        hotline = e.hotline or ""
        if hotline not in self.hotlines() or e.call_id is None:
            return
        self._seen_calls.add(e.call_id)
        self._outcomes.setdefault(e.call_id, CallOutcome())
        _trim(self._outcomes, self._remember)
        d = e.data()
        channel = str(d.get("channel") or "")
        call = WaitingCall(e.call_id, hotline, str(d.get("caller_num") or ""), channel,
                           handover_id(self.header_of(channel)) if channel else None, e.ts)  # fmt: skip
        found = self._find(call)
        if found is None:
            self.waiting[call.call_id] = call
            _trim(self.waiting, self._remember)
            return
        out.append(self._bind(found[0], call, found[1]))

    def _find(self, call: WaitingCall) -> tuple[RemoteHandover, str] | None:
        if call.header is not None:
            h = self.pending.get(call.header)
            return (h, "header") if h is not None else None
        for h in reversed(self.pending.values()):  # the latest hand-over first
            if self._match_call(call, h) is not None:
                return h, "caller_number"
        return None

    def _match_call(self, call: WaitingCall, h: RemoteHandover) -> str | None:
        if call.header is not None:
            return "header" if call.header == h.transfer_id else None
        same_number = bool(h.caller_num) and CHINA.normalise(h.caller_num) == CHINA.normalise(call.caller_num)
        in_window = -self.window_s <= call.ts - h.ts <= self.window_s
        return "caller_number" if same_number and h.to_hotline == call.hotline and in_window else None

    def _bind(self, h: RemoteHandover, call: WaitingCall, match: str) -> HandoverBound:
        self.pending.pop(h.transfer_id, None)
        self.bound[h.transfer_id] = call.call_id
        _trim(self.bound, self._remember)
        self.of_call[call.call_id] = (h, call)
        _trim(self.of_call, self._remember)
        self._match[h.transfer_id] = match
        _trim(self._match, self._remember)
        ts = max(call.ts, h.ts)
        return HandoverBound(ts=ts, call_id=call.call_id, hotline=call.hotline, match=match, channel=call.channel,
                             remote_call_id=h.remote_call_id, **handover_fields(h, self.centre))  # fmt: skip

    def recall(self, handovers: Iterable[RemoteHandover]) -> None:
        """Hand-overs announced before a restart (from the records) pending again; nothing is published."""
        for h in handovers:
            if h.transfer_id not in self.bound:
                self.pending[h.transfer_id] = h
        _trim(self.pending, self._remember)

    def forget_call(self, call_id: str) -> None:
        """The call is over: it waits for no data any more (a hand-over arriving later stays pending)."""
        self.waiting.pop(call_id, None)
        self._seen_calls.discard(call_id)


def handover_fields(h: RemoteHandover, centre: str) -> dict[str, str]:
    """The hand-over's fields of the receiving centre's events (``handover.*``)."""
    return {"transfer_id": h.transfer_id, "from_hotline": h.from_hotline, "to_hotline": h.to_hotline,
            "caller_num": h.caller_num, "agent": h.sender, "category": h.category, "ticket": h.ticket,
            "summary": h.summary, "centre": centre}  # fmt: skip


V = TypeVar("V")


def _trim(d: OrderedDict[str, V], limit: int) -> None:
    while len(d) > limit:
        d.popitem(last=False)
