"""Channels of the simulated PBX: naming, identifiers, snapshots (sans-IO).

A channel carries exactly the state Asterisk puts into its 14-field AMI snapshot, plus what the
simulator needs to run it (dialplan position, variables, bridge, Local partner).
"""

from __future__ import annotations

from collections.abc import Iterator

STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
DOWN, RING, RINGING, UP = 0, 4, 5, 6

# Q.850 cause texts as Asterisk prints them in Hangup events (causes.c).
CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}

UNKNOWN = "<unknown>"


class Channel:
    """One simulated channel. Slotted: the traffic generator keeps tens of thousands alive."""

    __slots__ = (
        "app",
        "appdata",
        "bridge",
        "cid_name",
        "cid_num",
        "conn_name",
        "conn_num",
        "context",
        "created",
        "endpoint",
        "exten",
        "hungup",
        "linkedid",
        "name",
        "partner",
        "priority",
        "run_gen",
        "state",
        "tech",
        "uniqueid",
        "vars",
        "waiter",
    )

    def __init__(self, name: str, uniqueid: str, linkedid: str, context: str, exten: str, now: float) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = DOWN
        self.cid_num = UNKNOWN
        self.cid_name = UNKNOWN
        self.conn_num = UNKNOWN
        self.conn_name = UNKNOWN
        self.app = ""
        self.appdata = ""
        self.vars: dict[str, str] = {}
        self.bridge: object | None = None  # Bridge; typed loosely to keep this module dependency-free
        self.partner: Channel | None = None  # the other half of a Local channel
        self.endpoint = ""  # PJSIP endpoint name, or "" for Local
        self.tech = name.split("/", 1)[0]
        self.created = now
        self.hungup = False
        # Incremented whenever the dialplan position is taken over (Redirect, hang-up), so that a
        # scheduled continuation of the old position knows it is stale.
        self.run_gen = 0
        # What the channel is blocked on (a Dial, a Queue entry, a conference); None when idle.
        self.waiter: object | None = None

    @property
    def state_desc(self) -> str:
        return STATE_DESC.get(self.state, "Unknown")

    @property
    def is_local_one(self) -> bool:
        return self.tech == "Local" and self.name.endswith(";1")

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        """The 14-field channel snapshot every channel event carries, optionally prefixed (Dest…)."""
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", self.state_desc),
            (prefix + "CallerIDNum", self.cid_num),
            (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.conn_num),
            (prefix + "ConnectedLineName", self.conn_name),
            (prefix + "Language", "en"),
            (prefix + "AccountCode", ""),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


class Naming:
    """Per-technology channel counters and the Uniqueid sequence (``<epoch>.<n>``) of one PBX run."""

    __slots__ = ("_counters", "_epoch", "_seq")

    def __init__(self, epoch: int, counters: dict[str, int] | None = None) -> None:
        self._epoch = epoch
        self._seq = 0
        self._counters: dict[str, int] = dict(counters or {})

    def next_suffix(self, tech: str) -> str:
        n = self._counters.get(tech, 0)
        self._counters[tech] = n + 1
        return f"{n & 0xFFFFFFFF:08x}"

    def next_uniqueid(self) -> str:
        uid = f"{self._epoch}.{self._seq}"
        self._seq += 1
        return uid


def split_callerid(text: str) -> tuple[str, str]:
    """``"Alice" <1380>`` → (number, name); a bare number is both (as Asterisk's Originate does)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, rest = text.partition("<")
        num = rest[:-1].strip()
        name = name.strip().strip('"')
        return (num or UNKNOWN), (name or UNKNOWN)
    if not text:
        return UNKNOWN, UNKNOWN
    return text, text


def iter_names(channels: dict[str, Channel]) -> Iterator[str]:
    return iter(list(channels))
