"""Domain events derived by the call tracker (documented for operators in docs/events.md).

Every event carries ``call_id`` (the Linkedid of the original call — stable across transfers and
conferences), ``hotline`` (the hotline the call came in on, when known) and ``ts``. Party numbers are
always included so that consumers never have to look the call up. Channel fields hold Asterisk channel
names (``PJSIP/agent1001-00000004``); ``agent`` fields hold the stable endpoint (``agent1001``).
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(DomainEvent):
    TYPE = "call.offered"
    DOC = "A new call reached the PBX (first channel of a Linkedid)."
    caller_num: str = ""
    caller_name: str = ""
    channel: str = ""
    endpoint: str = ""  # trunk / endpoint the call came from (PJSIP endpoint or Local exten@context)
    context: str = ""
    did: str = ""  # the extension dialled into (exten of the first channel when offered)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerChanged(DomainEvent):
    TYPE = "call.caller_changed"
    DOC = "The PBX changed the caller's number after the offer (a dialplan rewrite); later events carry the new one."
    caller_num: str = ""  # normalised, as in every call event
    caller_name: str = ""
    previous_num: str = ""
    raw_num: str = ""  # the number exactly as Asterisk has it
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueWaitEvent(DomainEvent):
    """The fields of a caller's own queue events: the queue, its place, how many wait, who it is (no TYPE: a
    base, never sent itself)."""

    queue: str = ""
    position: int = 0
    count: int = 0
    caller_num: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(QueueWaitEvent):
    TYPE = "call.queued"
    DOC = "The caller entered a queue."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging(DomainEvent):
    TYPE = "call.ringing"
    DOC = "A party (agent, hotline trunk, phone) is being rung for this call."
    agent: str = ""  # endpoint of the rung leg (agent1001, hotline-12345, 1002@internal)
    agent_channel: str = ""
    agent_num: str = ""  # caller ID of the rung leg itself
    connected_num: str = ""  # the number the rung party is shown (the caller's, after a transfer)
    queue: str = ""
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(DomainEvent):
    TYPE = "call.answered"
    DOC = "A rung party answered; wait_s counts from the call's creation."
    agent: str = ""
    agent_channel: str = ""
    agent_num: str = ""
    connected_num: str = ""
    queue: str = ""
    wait_s: float = 0.0
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHeld(DomainEvent):
    TYPE = "call.held"
    DOC = "A party put the call on hold."
    channel: str = ""
    party: str = ""  # caller | agent | other
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallUnheld(DomainEvent):
    TYPE = "call.unheld"
    DOC = "A party took the call off hold."
    channel: str = ""
    party: str = ""
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(DomainEvent):
    TYPE = "call.transferred"
    DOC = (
        "Asterisk reported a transfer. A blind transfer's Success only means the caller was handed to the "
        "dialplan; whether the destination answered is the transfer's call.transfer_ended."
    )
    kind: str = ""  # blind | attended
    transferer: str = ""  # channel of the party that transferred (the agent)
    transferer_num: str = ""
    transferee: str = ""  # channel of the party that was transferred (the caller)
    target: str = ""  # exten@context (blind) or the target channel (attended)
    result: str = ""  # Success | Fail | Invalid | Not Permitted
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferEnded(DomainEvent):
    TYPE = "call.transfer_ended"
    DOC = (
        "The one outcome of a call.transferred (a phone's transfer keys or callbridge's Atxfer): completed "
        "(someone answered for it) or failed (why, with the Q.850 cause and SIP status of the failed leg, and "
        "the caller's fate: rescued by the dialplan or lost)."
    )
    kind: str = ""  # blind | attended
    transferer: str = ""
    transferee: str = ""
    target: str = ""  # as in call.transferred
    outcome: str = ""  # completed | failed
    reason: str = ""  # failed: busy | no_answer | unreachable | congestion | rejected | caller_hangup | refused
    cause: int | None = None  # Q.850 cause of the failed leg (or of the caller's leg when no leg was created)
    sip_status: str = ""  # SIP status of the failed leg (Asterisk's TechCause), "" when unknown
    answered_by: str = ""  # endpoint of the party that answered (completed: the target; failed: the rescuer)
    answered_channel: str = ""
    caller_fate: str = ""  # answered | rescued | lost | stayed (a refused transfer leaves the caller in place)
    wait_s: float = 0.0  # from the transfer to this outcome
    caller_num: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(DomainEvent):
    TYPE = "call.ended"
    DOC = "The last channel of the call hung up (or the call vanished in a resync / PBX restart)."
    cause: int | None = None  # Q.850 cause of the caller's leg when known
    cause_txt: str = ""
    duration_s: float = 0.0
    answered: bool = False
    caller_num: str = ""
    # hangup | vanished | pbx_restart | ended_while_unobserved (callbridge was down) | pickup (the picker's own leg)
    reason: str = "hangup"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDtmf(DomainEvent):
    TYPE = "call.dtmf"
    DOC = "A digit received from a party's phone (DTMFEnd, Direction Received, non-Local channel)."
    channel: str = ""
    party: str = ""  # caller | agent | other
    digit: str = ""
    duration_ms: int = 0
    direction: str = "Received"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceStarted(DomainEvent):
    TYPE = "conference.started"
    DOC = "A ConfBridge room came into existence."
    room: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceJoined(DomainEvent):
    TYPE = "conference.joined"
    DOC = "A party joined a ConfBridge room (the CBAnn announcer is never a party)."
    room: str = ""
    channel: str = ""
    party_num: str = ""
    party_name: str = ""
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceLeft(DomainEvent):
    TYPE = "conference.left"
    DOC = "A party left a ConfBridge room."
    room: str = ""
    channel: str = ""
    party_num: str = ""
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceEnded(DomainEvent):
    TYPE = "conference.ended"
    DOC = "A ConfBridge room was torn down."
    room: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJoined(QueueWaitEvent):
    TYPE = "queue.joined"
    DOC = "A caller started waiting in a queue."


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLeft(QueueWaitEvent):
    TYPE = "queue.left"
    DOC = "A caller stopped waiting in a queue (answered, abandoned, withdrawn or timed out)."


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAbandoned(DomainEvent):
    TYPE = "queue.abandoned"
    DOC = "A waiting caller left without being answered (hung up or withdrawn)."
    queue: str = ""
    position: int = 0
    original_position: int = 0
    hold_s: int = 0
    caller_num: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberChanged(DomainEvent):
    TYPE = "queue.member_changed"
    DOC = "A queue member was added, removed, paused/unpaused or changed device status."
    queue: str = ""
    member: str = ""  # member name
    interface: str = ""
    status: int = 0  # AST_DEVICE_*: 1 not in use, 2 in use, 3 busy, 5 unavailable, 6 ringing
    paused: bool = False
    change: str = ""  # added | removed | pause | status


@dataclass(frozen=True, slots=True, kw_only=True)
class PbxRestarted(DomainEvent):
    TYPE = "pbx.restarted"
    DOC = "Asterisk shut down or (re)booted; all tracked state was cleared."
    phase: str = ""  # shutdown | booted
    restart: bool = False
    dropped_calls: int = 0


CALL_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    CallOffered, CallerChanged, CallQueued, CallRinging, CallAnswered, CallHeld, CallUnheld, CallTransferred,
    CallTransferEnded, CallEnded, CallDtmf, ConferenceStarted, ConferenceJoined, ConferenceLeft, ConferenceEnded,
    QueueJoined, QueueLeft, QueueAbandoned, QueueMemberChanged, PbxRestarted,
)  # fmt: skip
