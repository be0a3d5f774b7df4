"""Domain events of the receiving centre (published under the receiving hotline and the sending one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from callbridge.domain import DomainEvent

Match = Literal["header", "caller_number"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _RemoteHandoverEvent(DomainEvent):
    """A hand-over of another centre as the receiving centre's daemon knows it (no TYPE: a base)."""

    transfer_id: str = ""
    from_hotline: str = ""
    to_hotline: str = ""
    caller_num: str = ""
    agent: str = ""  # the sending agent at the other centre
    category: str = ""
    ticket: str = ""
    summary: str = ""
    centre: str = ""  # the other centre's site id
    match: str = ""  # header | caller_number ("" for a hand-over that failed before any call was bound)

    def also_hotlines(self) -> tuple[str, ...]:
        if self.from_hotline and self.from_hotline != self.hotline:
            return (self.from_hotline,)
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverBound(_RemoteHandoverEvent):
    TYPE: ClassVar[str] = "handover.bound"
    DOC: ClassVar[str] = (
        "An inbound call of this centre is bound to the hand-over another centre published: by the "
        "X-Callbridge-Handover SIP header (match=header) or, without it, by caller number and time window "
        "(match=caller_number); call_id is this centre's call."
    )

    channel: str = ""  # the inbound leg
    remote_call_id: str = ""  # the call id at the sending centre


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverFailed(_RemoteHandoverEvent):
    TYPE: ClassVar[str] = "handover.failed"
    DOC: ClassVar[str] = (
        "A hand-over another centre announced to this one failed there (this centre unreachable, no answer): "
        "the sending centre's failure chain applies; this centre marks the pending hand-over failed."
    )

    reason: str = ""
    outcome: str = ""  # failed | returned (the sending centre's transfer outcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class _BoundCallOutcome(_RemoteHandoverEvent):
    """What became of the bound call at this centre (no TYPE: a base)."""

    wait_s: float = 0.0  # the caller's wait here: from its arrival to the answer, or to its end
    remote_call_id: str = ""  # the call id at the sending centre


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverAnswered(_BoundCallOutcome):
    TYPE: ClassVar[str] = "handover.answered"
    DOC: ClassVar[str] = (
        "An agent of this centre answered the call bound to another centre's hand-over (not this PBX answering "
        "the trunk: the hand-over really reached a person); answered_agent is this centre's agent, wait_s the "
        "time from the call's arrival here to the answer."
    )

    answered_agent: str = ""  # this centre's agent (endpoint) who answered


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverAbandoned(_BoundCallOutcome):
    TYPE: ClassVar[str] = "handover.abandoned"
    DOC: ClassVar[str] = (
        "The call bound to another centre's hand-over ended here before any agent of this centre answered it "
        "(the caller hung up in the queue); wait_s is how long it waited here, reason how it ended."
    )

    reason: str = ""  # abandoned_in_queue | the call's end reason (hangup, vanished …)


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverAnnounced(_RemoteHandoverEvent):
    TYPE: ClassVar[str] = "handover.announced"
    DOC: ClassVar[str] = (
        "Another centre announced a hand-over to this one (its transfer.requested, taken in over the link): "
        "the data waits for the call it belongs to (handover.bound) or its failure (handover.failed). "
        "Published under the receiving hotline only; recorded, so a restarted daemon still binds the call."
    )

    remote_call_id: str = ""  # the call id at the sending centre

    def also_hotlines(self) -> tuple[str, ...]:
        return ()  # the sender knows its own transfer: nothing goes back over the link
