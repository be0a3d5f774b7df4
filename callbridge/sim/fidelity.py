"""Compare a simulated AMI stream with a recorded Asterisk 22 one, and replay recorded actions.

What is compared (and why): per channel and per Stasis stream (state, dial, bridge, queue, transfer,
DTMF, originate), the sequence of *significant* events with the headers that matter to callbridge
(caller numbers, dial/queue/transfer outcomes, hang-up causes); per action, the reply (Response,
Message, list size) and the list items that carry state (queue entries in queue order with their
priority, members, conference users, bridge members). Uniqueids, timestamps, SessionIDs, bridge ids and the exact
hex suffix of channel names may differ: channel names are normalised to ``<base>-<ordinal>``.
Dialplan noise (Newexten, VarSet, DeviceStateChange, NewCallerid/NewConnectedLine, LocalBridge,
RTCP) is not compared event by event; the numbers it carries are checked where they matter
(BridgeEnter and Hangup carry CallerIDNum/ConnectedLineNum).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.ami.framing import AmiFramer, AmiMessage

SIGNIFICANT: dict[str, tuple[str, ...]] = {
    "Newchannel": ("ChannelStateDesc", "CallerIDNum", "Context", "Exten"),
    "Newstate": ("ChannelStateDesc",),
    "DialBegin": ("DialString",),
    "DialState": ("DialStatus",),
    "DialEnd": ("DialStatus",),
    "BridgeEnter": ("BridgeType", "CallerIDNum", "ConnectedLineNum"),
    "BridgeLeave": ("BridgeType",),
    "HangupRequest": ("Cause", "TechCause"),
    "SoftHangupRequest": ("Cause",),
    "Hangup": ("Cause", "TechCause", "CallerIDNum", "ConnectedLineNum"),
    "BlindTransfer": ("Result", "IsExternal", "Context", "Extension"),
    "AttendedTransfer": ("Result", "DestType", "IsExternal"),
    "QueueCallerJoin": ("Queue", "Position", "Count"),
    "QueueCallerLeave": ("Queue", "Position", "Count"),
    "QueueCallerAbandon": ("Queue", "Position", "OriginalPosition"),
    "AgentCalled": ("Queue", "Interface"),
    "AgentConnect": ("Queue", "Interface"),
    "AgentComplete": ("Queue", "Interface"),
    "AgentRingNoAnswer": ("Queue", "Interface"),
    "ConfbridgeJoin": ("Conference",),
    "ConfbridgeLeave": ("Conference",),
    "ConfbridgeMute": ("Conference",),
    "OriginateResponse": ("Response", "Reason"),
    "DTMFBegin": ("Digit", "Direction"),
    "DTMFEnd": ("Digit", "Direction"),
    "Hold": (),
    "Unhold": (),
    "MusicOnHoldStart": (),
    "MusicOnHoldStop": (),
    "UserEvent": ("UserEvent",),
}
# Asterisk publishes channel state, dialing, bridging, queue and DTMF messages on different Stasis
# topics, delivered to AMI by different threads: the order *between* these streams varies from run to
# run of the same scenario on a real Asterisk (compare DialBegin vs Newstate Ringing in traces 04 and
# 08, or ConfbridgeJoin vs OriginateResponse in 07). Order is therefore compared within a stream.
STREAM = {
    "Newchannel": "state", "Newstate": "state", "HangupRequest": "state", "SoftHangupRequest": "state",
    "Hangup": "state", "DialBegin": "dial", "DialState": "dial", "DialEnd": "dial",
    "OriginateResponse": "originate", "BridgeEnter": "bridge", "BridgeLeave": "bridge", "ConfbridgeJoin": "bridge",
    "ConfbridgeLeave": "bridge", "ConfbridgeMute": "bridge", "Hold": "bridge", "Unhold": "bridge",
    "MusicOnHoldStart": "bridge", "MusicOnHoldStop": "bridge", "BlindTransfer": "transfer",
    "AttendedTransfer": "transfer", "QueueCallerJoin": "queue", "QueueCallerLeave": "queue",
    "QueueCallerAbandon": "queue", "AgentCalled": "queue", "AgentConnect": "queue", "AgentComplete": "queue",
    "AgentRingNoAnswer": "queue", "DTMFBegin": "dtmf", "DTMFEnd": "dtmf", "UserEvent": "user",
}
# Events that name two channels: the event is filed under both, with its role.
TWO_PARTY = ("DialBegin", "DialState", "DialEnd", "AgentCalled", "AgentConnect", "AgentComplete",
             "AgentRingNoAnswer")
# Pairs Asterisk emits from different threads: their relative order varies between runs.
RACY = {frozenset(p) for p in (
    ("OriginateResponse", "DialEnd/dest"), ("ConfbridgeJoin", "BridgeEnter"), ("MusicOnHoldStop", "QueueCallerAbandon"),
    ("OriginateResponse", "Newstate"), ("HangupRequest", "BridgeLeave"), ("SoftHangupRequest", "BridgeLeave"),
    ("SoftHangupRequest", "ConfbridgeLeave"), ("HangupRequest", "ConfbridgeLeave"), ("Hangup", "BridgeLeave"),
    ("MusicOnHoldStop", "QueueCallerLeave"), ("SoftHangupRequest", "HangupRequest"),
    ("DialState/dest", "Newstate"), ("ConfbridgeLeave", "BridgeLeave"))}
_NORMAL_REQUEST = re.compile(r"^(Soft)?HangupRequest( Cause=(16|0))?$")

# List items compared with the replies (their order inside a list is Asterisk's container order,
# except QueueEntry, whose order is the queue order).
LIST_ITEMS: dict[str, tuple[str, ...]] = {
    "QueueParams": ("Queue", "Strategy", "Calls"),
    "QueueEntry": ("Queue", "Position", "Channel", "CallerIDNum", "Priority"),
    "QueueMember": ("Queue", "Location", "Paused"),
    "QueueSummary": ("Queue", "Callers"),
    "ConfbridgeList": ("Conference", "Channel", "Muted"),
    "ConfbridgeListRooms": ("Conference", "Parties"),
    "BridgeListItem": ("BridgeType", "BridgeNumChannels"),
    "BridgeInfoChannel": ("Channel", "CallerIDNum", "ConnectedLineNum"),
}
_UNORDERED = {"ConfbridgeList", "BridgeListItem", "BridgeInfoChannel", "QueueParams", "QueueMember"}

_SUFFIX = re.compile(r"-[0-9a-f]{8}(?=;|$)")


def parse_stream(data: bytes) -> list[AmiMessage]:
    return [f for f in AmiFramer().feed(data) if isinstance(f, AmiMessage)]


@dataclass(frozen=True, slots=True)
class TimedAction:
    at: float  # seconds after the session started
    text: bytes  # the raw action frame, CRLF-terminated


def parse_log_actions(log_text: str) -> list[TimedAction]:
    """Actions of a NAME.log with their send times (``>>> t=+ s`` blocks)."""
    actions: list[TimedAction] = []
    blocks = re.split(r"^(?=<<< |>>> |### )", log_text, flags=re.MULTILINE)
    for block in blocks:
        if not block.startswith(">>> "):
            continue
        head, _, body = block.partition("\n")
        match = re.search(r"t=\+\s*([0-9.]+)", head)
        lines = [ln for ln in body.strip("\n").splitlines() if ln.strip()]
        if match and lines:
            actions.append(TimedAction(float(match.group(1)), ("\r\n".join(lines) + "\r\n\r\n").encode()))
    return actions


def parse_log_notes(log_text: str) -> list[tuple[float, str]]:
    notes = []
    for line in log_text.splitlines():
        match = re.match(r"^### t=\+\s*([0-9.]+)\s+(.*)$", line)
        if match:
            notes.append((float(match.group(1)), match.group(2)))
    return notes


def initial_counters(messages: list[AmiMessage]) -> dict[str, int]:
    """The first channel number each technology used in a recording (to name channels alike)."""
    counters: dict[str, int] = {}
    for msg in messages:
        for key in ("Channel", "DestChannel", "LocalOneChannel"):
            name = msg.get(key)
            match = re.search(r"^(\w+)/.*-([0-9a-f]{8})(;\d)?$", name)
            if match and msg.name in ("Newchannel", "ChannelHungup"):
                tech = "Local" if match.group(1) in ("Local", "CBAnn") else match.group(1)
                n = int(match.group(2), 16)
                counters[tech] = min(counters.get(tech, n), n)
    return counters


class _Namer:
    def __init__(self) -> None:
        self._map: dict[str, str] = {}
        self._count: dict[str, int] = defaultdict(int)

    def __call__(self, name: str) -> str:
        if not name or name in self._map:
            return self._map.get(name, name)
        m = _SUFFIX.search(name)
        if m is None:
            self._map[name] = name
            return name
        base = name[: m.start()]
        pair = name[: m.end()]
        if pair not in self._map:
            self._count[base] += 1
            self._map[pair] = f"{base}-<{self._count[base]}>"
        self._map[name] = self._map[pair] + name[m.end():]
        return self._map[name]


@dataclass(slots=True)
class Digest:
    """The comparable content of one AMI stream."""

    per_channel: dict[str, list[str]] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)


def digest(messages: list[AmiMessage]) -> Digest:
    namer = _Namer()
    per: dict[str, list[str]] = defaultdict(list)
    replies: list[str] = []
    for msg in messages:
        if msg.kind == "response":
            if msg.get("Message") == "Authentication accepted" or msg.get("ActionID") == "":
                pass
            replies.append(f"{msg.get('Response')}: {msg.get('Message')}")
            continue
        if msg.kind != "event":
            continue
        name = msg.name
        if name == "ChannelsHungupListComplete":
            # A /regex/ Hangup races channels that vanish while the list is built (trace 09 lists 5 of 6).
            replies.append(f"  {name}")
            continue
        if name in LIST_ITEMS:
            fields = " ".join(f"{h}={namer(msg.get(h)) if h == 'Channel' else msg.get(h)}" for h in LIST_ITEMS[name])
            replies.append(f"  {name} {fields}")
            continue
        if name.endswith("Complete") and msg.get("EventList") == "Complete":
            replies.append(f"  {name} ListItems={msg.get('ListItems')}")
            continue
        if name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause"):
            # InCall is left out: whether the device or the queue updates first is a race (trace 09).
            per[f"{msg.get('Interface')} [member {msg.get('Queue')}]"].append(
                f"{name} Status={msg.get('Status')} Paused={msg.get('Paused')}")
            continue
        if name not in SIGNIFICANT:
            continue
        values = " ".join(f"{h}={msg.get(h)}" for h in SIGNIFICANT[name] if msg.get(h, "\0") != "\0")
        stream = STREAM[name]
        if name in TWO_PARTY:
            if msg.get("Channel"):
                per[f"{namer(msg.get('Channel'))} [{stream}]"].append(f"{name}/caller {values}".rstrip())
            per[f"{namer(msg.get('DestChannel'))} [{stream}]"].append(f"{name}/dest {values}".rstrip())
            continue
        per[f"{namer(msg.get('Channel'))} [{stream}]"].append(f"{name} {values}".rstrip())
    return Digest({k: _settle(v) for k, v in per.items()}, _sort_lists(replies))


def _sort_lists(replies: list[str]) -> list[str]:
    """Sort runs of unordered list items (Asterisk lists them in hash-container order)."""
    out: list[str] = []
    run: list[str] = []
    for line in [*replies, ""]:
        if line.startswith("  ") and line.split(" ")[2] in _UNORDERED:
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        if line:
            out.append(line)
    return out


def _settle(seq: list[str]) -> list[str]:
    """Order racy adjacent pairs canonically (bubble pass until stable).

    Normal-clearing hang-up requests (HangupRequest/SoftHangupRequest, cause 16, 0 or none) are
    left out: whether a channel is asked before it goes (and by whom, Soft or not) depends on
    Asterisk's thread scheduling — a ``/regex/`` Hangup flags channels one by one while their peers
    are already clearing (traces 02, 04, 09). Requests with a real cause (17/486, 18/408, restart 4)
    and every Hangup with its cause are compared.
    """
    out = [item for item in seq if not _NORMAL_REQUEST.match(item)]
    changed = True
    while changed:
        changed = False
        for i in range(len(out) - 1):
            a, b = out[i], out[i + 1]
            if frozenset((a.split(" ")[0], b.split(" ")[0])) in RACY and a > b:
                out[i], out[i + 1] = b, a
                changed = True
    return out


@dataclass(slots=True)
class Comparison:
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        return "identical" if self.ok else "\n".join(self.differences)


def compare(recorded: list[AmiMessage], simulated: list[AmiMessage]) -> Comparison:
    want, got = digest(recorded), digest(simulated)
    diffs: list[str] = []
    for chan in sorted(set(want.per_channel) | set(got.per_channel)):
        a, b = want.per_channel.get(chan), got.per_channel.get(chan)
        if a is None:
            diffs.append(f"{chan}: not in the recording; simulator emitted {b}")
            continue
        if b is None:
            diffs.append(f"{chan}: missing from the simulation; recorded {a}")
            continue
        if a != b:
            diffs.append(_seq_diff(chan, a, b))
    if want.replies != got.replies:
        diffs.append(_seq_diff("replies", want.replies, got.replies))
    return Comparison(diffs)


def _seq_diff(label: str, want: list[str], got: list[str]) -> str:
    lines = [f"{label}:"]
    for i in range(max(len(want), len(got))):
        a = want[i] if i < len(want) else "—"
        b = got[i] if i < len(got) else "—"
        mark = "  " if a == b else "≠ "
        lines.append(f"  {mark}{i:2d} recorded: {a}\n  {'  '}   simulated: {b}" if a != b else f"    {i:2d} {a}")
    return "\n".join(lines)


def load_scenario(traces: Path, name: str) -> tuple[list[AmiMessage], list[TimedAction], list[tuple[float, str]]]:
    recorded = parse_stream((traces / f"{name}.rx.raw").read_bytes())
    log_text = (traces / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    return recorded, parse_log_actions(log_text), parse_log_notes(log_text)
