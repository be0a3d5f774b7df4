"""Offers: which hotlines a citizen's call was presented to, and what became of each presentation.

This is the one definition behind every offered / answered / abandoned count — the live board (so the
wallboard, ``/metrics`` and the answer-rate alarm), and the records' KPIs (``/api/kpi``, ``callbridge
report``, the demo's table), which run this same book over the recorded events of their period
(:meth:`callbridge.store.records.RecordStore.period_records`). Pure: events in, offers out, no I/O.

* **Offered.** A citizen's call is offered to a hotline when it reaches it: ``call.offered`` (its DID,
  or an id of its own on the receiving side of a transfer from another PBX), or a **transfer into the
  hotline once it rings there** (the first ``transfer.ringing`` of the transfer, or its
  ``transfer.answered`` when no ringing was reported). One presentation per
  call and hotline, and one per transfer: the receiving side's own ``call.offered`` carrying the
  transfer's ``transfer_id`` is that transfer's presentation, not a second one. A three-way leg
  callbridge called into a room (announced by ``threeway.leg_called``) is its transfer's part, never an
  offer of its own.
* **Answered.** A person of that hotline answered: ``call.answered`` of the presentation; for a transfer
  in, ``transfer.answered`` (the receiving agent or line took it).
* **Abandoned.** The presentation is over without an answer: its call ended (``call.ended``) first; for
  a transfer in, also the transfer's final failure (``failed`` / ``returned`` / ``refused``) after it
  rang — the receiving hotline did not take the call it was offered. ``queue.abandoned`` alone is *not*
  an outcome: Asterisk reports it whenever a caller leaves a queue unanswered, also when the call moves
  on — to the remote seats on overflow, or back into the queue after an announcement — and such a call is
  answered or lost later.
* **In progress.** Neither yet. After ``pbx.restarted`` the open presentations stay in progress: the
  calls are gone, but no outcome was seen.
* **Wait.** Offer to answer (the answer event's ``wait_s`` when it gives one) or to the end.

Finished presentations are handed out once (``feed`` returns the changes) and forgotten when their call
ends; ``keep`` collects every presentation instead (what a period's KPIs need).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from callbridge.store.kpi import CallRow
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES, EventRecord, caller_of

#: Event types the book reads (the records store replays only these).
OFFER_EVENT_TYPES = (
    "call.offered", "call.answered", "call.ended", "threeway.leg_called", "pbx.restarted", "transfer.ringing",
    "transfer.answered", *(f"transfer.{o}" for o in FINAL_TRANSFER_OUTCOMES),
)  # fmt: skip

#: Call ids remembered after their end (late duplicates of an ended call are ignored), and legs kept.
REMEMBERED = 4096

Change = Literal["offered", "answered", "abandoned"]
_LOST_TRANSFER = frozenset(o for o in FINAL_TRANSFER_OUTCOMES if o != "completed")


@dataclass(slots=True, eq=False)
class Offer:
    """One presentation of a citizen's call to a hotline."""

    call_id: str
    hotline: str
    offered_ts: float
    caller_num: str | None = None
    transfer_id: str | None = None  # the transfer that brought the call (a transfer in)
    by_transfer: bool = False  # offered when the transfer rang (not by a call.offered of its own)
    answered_ts: float | None = None
    ended_ts: float | None = None
    wait_s: float | None = None
    outcome: Literal["answered", "abandoned"] | None = None

    def row(self) -> CallRow:
        return CallRow(call_id=self.call_id, hotline=self.hotline, offered_ts=self.offered_ts,
                       answered_ts=self.answered_ts, ended_ts=self.ended_ts, wait_s=self.wait_s,
                       outcome=self.outcome, caller_num=self.caller_num)  # fmt: skip


_Transition = Callable[[EventRecord, str], list[tuple[Change, Offer]]]


def _remember(ids: dict[str, None], key: str) -> None:
    ids[key] = None
    if len(ids) > REMEMBERED:
        del ids[next(iter(ids))]


@dataclass
class OfferBook:
    """Presentations of citizens' calls, fed one event at a time (see the module's definition)."""

    keep: bool = False
    #: every presentation ever made (only with ``keep``), in offer order
    offers: list[Offer] = field(default_factory=list)
    _by_call: dict[str, dict[str, Offer]] = field(default_factory=dict)  # call_id → hotline → offer
    _by_transfer: dict[str, Offer] = field(default_factory=dict)  # transfer_id → its offer to the receiver
    _legs: dict[str, None] = field(default_factory=dict)  # three-way legs' call ids (an ordered set)
    _ended: dict[str, None] = field(default_factory=dict)  # call ids whose end was seen
    #: the transition of each event type of a followed call (transfer.* apart: one family)
    _on_call: dict[str, _Transition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._on_call = {"call.offered": self._offered, "call.answered": self._answered, "call.ended": self._ended_call}

    @property
    def tracked_calls(self) -> int:
        """Calls the book still follows (offered and not ended): what it holds in memory."""
        return len(self._by_call)

    def add_legs(self, call_ids: Iterable[str]) -> None:
        """Call ids known to be three-way legs (e.g. from the records, announced before a period)."""
        for call_id in call_ids:
            _remember(self._legs, call_id)

    def feed(self, rec: EventRecord) -> list[tuple[Change, Offer]]:
        """Apply one event; return the presentations it created or finished."""
        t, call_id = rec.type, rec.call_id
        if t == "threeway.leg_called":
            if leg := rec.text("leg_call_id"):
                _remember(self._legs, leg)
        elif t == "pbx.restarted":  # every call is gone; what was open stays in progress
            self._by_call.clear()
            self._by_transfer.clear()
        elif not call_id or call_id in self._legs or call_id in self._ended:
            if t == "call.ended" and call_id:
                self._legs.pop(call_id, None)
        elif handler := self._on_call.get(t) or (self._transfer if t.startswith("transfer.") else None):
            return handler(rec, call_id)
        return []

    # --- transitions ---------------------------------------------------------------------------------------

    def _add(self, offer: Offer, *call_ids: str) -> list[tuple[Change, Offer]]:
        for call_id in call_ids:
            self._by_call.setdefault(call_id, {})[offer.hotline] = offer
        if offer.transfer_id:
            self._by_transfer[offer.transfer_id] = offer
        if self.keep:
            self.offers.append(offer)
        return [("offered", offer)]

    def _offered(self, rec: EventRecord, call_id: str) -> list[tuple[Change, Offer]]:
        hotline = rec.hotline
        if not hotline or hotline in self._by_call.get(call_id, {}):
            return []
        xfer = rec.text("transfer_id")
        known = self._by_transfer.get(xfer) if xfer else None
        if known is not None and known.hotline == hotline:  # the receiving side of a transfer already offered
            self._by_call.setdefault(call_id, {})[hotline] = known
            return []
        offer = Offer(call_id, hotline, rec.ts, caller_of(rec), xfer)
        return self._add(offer, call_id)

    def _answered(self, rec: EventRecord, call_id: str) -> list[tuple[Change, Offer]]:
        offers = self._by_call.get(call_id, {})
        if rec.hotline:
            chosen = [offers[rec.hotline]] if rec.hotline in offers else []
        else:  # no hotline named: the call's own presentations (a transfer that rang is answered by its transfer)
            chosen = [o for o in offers.values() if not (o.by_transfer and o.call_id == call_id)]
        out: list[tuple[Change, Offer]] = []
        for offer in chosen:
            if offer.outcome is None:
                out.append(self._answer(offer, rec.ts, rec.number("wait_s")))
        return out

    @staticmethod
    def _answer(offer: Offer, ts: float, wait: float | None) -> tuple[Change, Offer]:
        offer.outcome, offer.answered_ts = "answered", ts
        offer.wait_s = wait if wait is not None else ts - offer.offered_ts
        return "answered", offer

    @staticmethod
    def _abandon(offer: Offer, ts: float) -> tuple[Change, Offer]:
        offer.outcome, offer.ended_ts, offer.wait_s = "abandoned", ts, ts - offer.offered_ts
        return "abandoned", offer

    def _ended_call(self, rec: EventRecord, call_id: str) -> list[tuple[Change, Offer]]:
        _remember(self._ended, call_id)
        out: list[tuple[Change, Offer]] = []
        for offer in self._by_call.pop(call_id, {}).values():
            if offer.ended_ts is None:
                offer.ended_ts = rec.ts
            if offer.outcome is None:
                out.append(self._abandon(offer, rec.ts))
            if offer.transfer_id and self._by_transfer.get(offer.transfer_id) is offer:
                del self._by_transfer[offer.transfer_id]
        return out

    def _transfer(self, rec: EventRecord, call_id: str) -> list[tuple[Change, Offer]]:
        xfer, outcome = rec.text("transfer_id"), rec.type.removeprefix("transfer.")
        if not xfer:
            return []
        offer = self._by_transfer.get(xfer)
        if outcome in ("ringing", "answered") and offer is None:
            return self._offered_by_transfer(rec, call_id, xfer, answered=outcome == "answered")
        if offer is None or offer.outcome is not None:
            return []
        if outcome == "answered":
            return [self._answer(offer, rec.ts, None)]
        return [self._abandon(offer, rec.ts)] if outcome in _LOST_TRANSFER else []

    def _offered_by_transfer(
        self, rec: EventRecord, call_id: str, xfer: str, *, answered: bool
    ) -> list[tuple[Change, Offer]]:
        """Rang there (or, with no ringing reported, answered there): offered to the receiving hotline."""
        to = rec.text("to_hotline")
        if not to or to in self._by_call.get(call_id, {}):
            return []
        offer = Offer(call_id, to, rec.ts, caller_of(rec), xfer, by_transfer=True)
        made = self._add(offer, call_id)
        return [*made, self._answer(offer, rec.ts, None)] if answered else made


def offers_of(events: Iterable[EventRecord], legs: Iterable[str] = ()) -> list[Offer]:
    """Every presentation made by ``events`` (in order), each with the outcome the events gave it."""
    book = OfferBook(keep=True)
    book.add_legs(legs)
    for rec in events:
        book.feed(rec)
    return book.offers
