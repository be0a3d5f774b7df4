"""Domain events of the engine's decisions (transfers, conferences, queues, nuisance, daemon state).

Every transfer event carries the hand-over payload (``transfer_id`` is the correlation id linking the
legs; ``call_id`` is the Linkedid of the original call). Transfer events name the destination hotline in
:meth:`also_hotlines` so the destination's software receives the screen pop — caller number, category,
ticket, summary — *before* its agent answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransferEvent(DomainEvent):
    """Common hand-over payload of every ``transfer.*`` event (no TYPE: not published itself)."""

    transfer_id: str = ""
    from_hotline: str = ""
    to_hotline: str = ""
    caller_num: str = ""
    agent: str = ""  # sending agent (endpoint, e.g. agent1001)
    category: str = ""
    ticket: str = ""
    summary: str = ""
    mode: str = ""  # blind | attended | three_way | expert
    line: str = ""  # line (trunk / queue) currently tried, when relevant

    def also_hotlines(self) -> tuple[str, ...]:
        if self.to_hotline and self.to_hotline != self.hotline:
            return (self.to_hotline,)
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested(_TransferEvent):
    TYPE = "transfer.requested"
    DOC = "A transfer was authorised and started (DTMF key or command); the destination's screen pop."
    source: str = ""  # dtmf | command


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRefused(_TransferEvent):
    TYPE = "transfer.refused"
    DOC = "A transfer request was refused (not a party, no rule, call busy in another transfer…)."
    reason: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRinging(_TransferEvent):
    TYPE = "transfer.ringing"
    DOC = "The destination of a transfer is ringing (line names the trunk/queue)."
    connected_num: str = ""  # the number presented to the destination


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferAnswered(_TransferEvent):
    TYPE = "transfer.answered"
    DOC = "The destination of a transfer answered."
    answered_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCompleted(_TransferEvent):
    TYPE = "transfer.completed"
    DOC = "The transfer is over and the caller is with the destination (or the call closed on both sides)."
    reason: str = ""  # answered | closed


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFailed(_TransferEvent):
    TYPE = "transfer.failed"
    DOC = "The transfer failed; reason says why (busy, congestion, unreachable, noanswer, hangup, ami_error…)."
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferBackupLine(_TransferEvent):
    TYPE = "transfer.backup_line"
    DOC = "The primary line failed; the next line of the chain (backup trunk) is being tried."
    reason: str = ""
    failed_line: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferReturned(_TransferEvent):
    TYPE = "transfer.returned"
    DOC = "Every line failed; the caller went back to the sending agent (never dropped)."
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferNumberVerified(_TransferEvent):
    TYPE = "transfer.number_verified"
    DOC = "The outbound leg presents the original caller's number (number carrying checked)."
    presented_num: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferNumberMismatch(_TransferEvent):
    TYPE = "transfer.number_mismatch"
    DOC = "Alarm: the outbound leg presents another number than the caller's (number carrying lost)."
    presented_num: str = ""
    channel: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreewayStarted(_TransferEvent):
    TYPE = "threeway.started"
    DOC = "Caller and sending agent moved into a conference room; the destination is being called in."
    room: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreewayLegCalled(_TransferEvent):
    TYPE = "threeway.leg_called"
    DOC = (
        "callbridge is calling the destination's line into the three-way room (once per line tried). "
        "leg_call_id is the call id that leg has at the PBX (its own Linkedid): a leg of this transfer, not a "
        "citizen's call — the records and the wallboard do not count it as an offered call."
    )
    room: str = ""
    leg_call_id: str = ""  # the Originate's ChannelId, i.e. the leg's Uniqueid and Linkedid


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreewayAgentLeft(_TransferEvent):
    TYPE = "threeway.agent_left"
    DOC = "The sending agent left the three-way conference (warm hand-over)."
    room: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePrioritySet(DomainEvent):
    TYPE = "queue.priority_set"
    DOC = "A caller's queue priority was set (expert transfer) or raised while waiting."
    queue: str = ""
    priority: int = 0
    caller_num: str = ""
    channel: str = ""
    transfer_id: str = ""
    category: str = ""
    reason: str = ""
    agent: str = ""  # who raised it (set_priority command); empty for an expert transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOverflowStarted(DomainEvent):
    TYPE = "queue.overflow_started"
    DOC = "A queue passed the dialplan's thresholds: new/waiting calls go to the remote target."
    queue: str = ""
    target: str = ""
    reason: str = ""  # waiting | longest_wait | free_agents
    waiting: int = 0
    longest_wait_s: float = 0.0
    free_agents: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOverflowEnded(DomainEvent):
    TYPE = "queue.overflow_ended"
    DOC = "The surge ended (below the thresholds with hysteresis): normal routing again."
    queue: str = ""
    reason: str = ""
    waiting: int = 0
    longest_wait_s: float = 0.0
    free_agents: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NuisanceFlagged(DomainEvent):
    TYPE = "nuisance.flagged"
    DOC = "A caller number passed the nuisance threshold across hotlines; the police (110) is notified."
    caller_num: str = ""
    count: int = 0
    window_s: float = 0.0
    action: str = ""  # tag | announce | none
    hotlines_called: tuple[str, ...] = ()
    notify: tuple[str, ...] = ("110",)

    def also_hotlines(self) -> tuple[str, ...]:
        return tuple(h for h in self.notify if h != self.hotline)


@dataclass(frozen=True, slots=True, kw_only=True)
class NuisanceReleased(DomainEvent):
    TYPE = "nuisance.released"
    DOC = "A supervisor released a flagged caller number: its calls are counted afresh."
    caller_num: str = ""
    forgotten_calls: int = 0  # calls of the window that no longer count
    agent: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialplanReloaded(DomainEvent):
    TYPE = "dialplan.reloaded"
    DOC = "A new dialplan was validated and swapped in (calls in progress keep their rules)."
    version: str = ""
    files: tuple[str, ...] = ()
    reason: str = ""  # sighup | file_change | command


@dataclass(frozen=True, slots=True, kw_only=True)
class DialplanRejected(DomainEvent):
    TYPE = "dialplan.rejected"
    DOC = "A changed dialplan was invalid; the running one stays."
    reason: str = ""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeSwitched(DomainEvent):
    TYPE = "mode.switched"
    DOC = "The operating mode changed (normal / surge / emergency)."
    mode: str = ""
    previous: str = ""
    reason: str = ""
    agent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiConnectedEvent(DomainEvent):
    TYPE = "ami.connected"
    DOC = "The AMI connection to Asterisk is up (after login and resync)."
    host: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiLostEvent(DomainEvent):
    TYPE = "ami.lost"
    DOC = "The AMI connection was lost; callbridge reconnects and resyncs without repeating actions."
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReceived(DomainEvent):
    TYPE = "command.received"
    DOC = "A command was received (MQTT or DTMF) and its outcome (ok or the refusal code)."
    verb: str = ""
    agent: str = ""
    source: str = ""  # mqtt | dtmf
    outcome: str = ""
    reason: str = ""
    transfer_id: str = ""


TRANSFER_EVENTS = (
    TransferRequested,
    TransferRefused,
    TransferRinging,
    TransferAnswered,
    TransferCompleted,
    TransferFailed,
    TransferBackupLine,
    TransferReturned,
    TransferNumberVerified,
    TransferNumberMismatch,
    ThreewayStarted,
    ThreewayLegCalled,
    ThreewayAgentLeft,
)
