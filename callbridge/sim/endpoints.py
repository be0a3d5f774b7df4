"""Far ends the simulator plays: agents' phones and hotline trunks, with their answer behaviour.

What a real SIP peer does is reduced to what Asterisk reports: when it rings (180), when it answers
(200), or how it refuses (486 → cause 17, 480 → 19, 503 → 34, Timer B → 408/cause 18) — see traces
04, 13, 15 and 16 of ``tests/fixtures/asterisk-22``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

BEHAVIOURS = ("answer", "busy", "noanswer", "dnd", "down", "unreachable", "congestion")


@dataclass(frozen=True, slots=True)
class Behaviour:
    mode: str = "answer"  # one of BEHAVIOURS
    ring_after: float = 0.05  # 180 Ringing after this many seconds
    answer_after: float = 0.5  # 200 OK after this many seconds (mode "answer")
    hangup_after: float | None = None  # the far end hangs up this long after answering
    timer_b: float = 32.0  # SIP Timer B: an INVITE nobody answers fails with 408 after this long

    def __post_init__(self) -> None:
        if self.mode not in BEHAVIOURS:
            raise ValueError(f"unknown endpoint behaviour {self.mode!r}; expected one of {BEHAVIOURS}")


@dataclass(slots=True)
class Endpoint:
    name: str  # PJSIP endpoint name: agent1001, hotline-12345
    kind: str  # "agent" | "trunk" | "phone"
    callerid_num: str = ""
    callerid_name: str = ""
    context: str = "from-agents"  # where calls FROM this endpoint enter the dialplan
    behaviour: Behaviour = field(default_factory=Behaviour)
    capacity: int = 0  # concurrent channels; 0 = unlimited
    active: int = 0

    @property
    def member_name(self) -> str:
        return self.callerid_name or self.name


# (cause, SIP status) of each refusal, and the DIALSTATUS Dial derives from the cause.
REFUSAL = {"busy": (17, 486), "dnd": (19, 480), "congestion": (34, 503), "unreachable": (18, 408)}


def dial_status_for_cause(cause: int) -> str:
    """How app_dial names the outcome of a leg that hung up before answering."""
    if cause == 17:
        return "BUSY"
    if cause in (34, 38, 42, 44, 58):
        return "CONGESTION"
    if cause in (0, 16, 18, 19):
        return "NOANSWER"
    return "CHANUNAVAIL"


class Endpoints:
    """Registry of endpoints by name; behaviour can be changed at run time (fault injection)."""

    def __init__(self, endpoints: list[Endpoint] | None = None) -> None:
        self._by_name: dict[str, Endpoint] = {ep.name: ep for ep in endpoints or []}

    def add(self, endpoint: Endpoint) -> None:
        self._by_name[endpoint.name] = endpoint

    def get(self, name: str) -> Endpoint | None:
        return self._by_name.get(name)

    def all(self) -> list[Endpoint]:
        return list(self._by_name.values())

    def set_behaviour(self, name: str, mode: str, **changes: float | None) -> Endpoint:
        ep = self._by_name.get(name)
        if ep is None:
            raise KeyError(name)
        ep.behaviour = replace(ep.behaviour, mode=mode, **changes)  # type: ignore[arg-type]
        return ep

    def trunk_for(self, number: str) -> Endpoint | None:
        """The trunk whose endpoint name is ``hotline-<number>`` or whose number is ``number``."""
        ep = self._by_name.get(f"hotline-{number}")
        if ep is not None:
            return ep
        for ep in self._by_name.values():
            if ep.kind == "trunk" and ep.callerid_num == number:
                return ep
        return None
