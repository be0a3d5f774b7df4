"""A tiny scripted PBX for engine unit tests: typed AMI events built from headers, fed to the real tracker."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.ami.decode import decode_headers
from callbridge.ami.event_types import AmiEvent
from callbridge.calls.tracker import CallTracker
from callbridge.dialplan import Dialplan, load_dialplan
from callbridge.domain import DomainEvent
from callbridge.engine.core import Engine, hotline_of
from callbridge.engine.effects import ActionResult, Effect, Publish, SendActions

ROOT = Path(__file__).resolve().parents[2]
CALLER = "13912345678"


@functools.cache
def example_plan() -> Dialplan:
    return load_dialplan(ROOT / "dialplans")


@dataclass
class Chan:
    name: str
    uid: str
    linkedid: str
    num: str
    context: str = "cb-inbound"
    exten: str = "12345"
    connected: str = ""

    def headers(self, prefix: str = "", state: str = "Up") -> dict[str, str]:
        return {prefix + "Channel": self.name, prefix + "ChannelState": "6" if state == "Up" else "5",
                prefix + "ChannelStateDesc": state, prefix + "CallerIDNum": self.num,
                prefix + "CallerIDName": self.num, prefix + "ConnectedLineNum": self.connected or "<unknown>",
                prefix + "ConnectedLineName": "", prefix + "Context": self.context, prefix + "Exten": self.exten,
                prefix + "Priority": "1", prefix + "Uniqueid": self.uid,
                prefix + "Linkedid": self.linkedid}  # fmt: skip


@dataclass
class Pbx:
    """Drives tracker + engine with the AMI events Asterisk would send; collects the engine's effects."""

    plan: Dialplan = field(default_factory=example_plan)
    now: float = 1000.0
    effects: list[Effect] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.tracker = CallTracker(hotline_of=hotline_of(lambda: self.engine.plan), clock=lambda: self.now)
        self.engine = Engine(self.plan, self.tracker, new_id=lambda: f"x{next(self._ids)}")

    def feed(self, name: str, headers: dict[str, str]) -> list[DomainEvent]:
        ev: AmiEvent = decode_headers(name, headers)
        derived = self.tracker.feed(ev, self.now)
        self.engine.on_ami_event(ev, derived, self.now)
        self.effects += self.engine.drain()
        return derived

    def take(self) -> list[Effect]:
        out, self.effects = self.effects, []
        return out

    def published(self) -> list[DomainEvent]:
        return [e.event for e in self.effects if isinstance(e, Publish)]

    def sent(self) -> list[SendActions]:
        return [e for e in self.effects if isinstance(e, SendActions)]

    def result(self, tag: str, outcome: str = "ok", error: str = "") -> None:
        self.engine.on_action_result(ActionResult(tag, outcome, 0, error), self.now)  # type: ignore[arg-type]
        self.effects += self.engine.drain()

    # --- building blocks ----------------------------------------------------------------------------
    def call(self, did: str = "12345", num: str = CALLER, seq: int = 1) -> Chan:
        c = Chan(f"PJSIP/carrier-{seq:08x}", f"c{seq}", f"c{seq}", num, "cb-inbound", did)
        self.feed("Newchannel", c.headers(state="Ring"))
        return c

    def answer_by(self, caller: Chan, endpoint: str = "agent1001", seq: int = 1) -> Chan:
        a = Chan(f"PJSIP/{endpoint}-{seq:08x}", f"a{seq}", caller.linkedid, endpoint.removeprefix("agent"),
                 "from-agents", "s", caller.num)
        self.feed("Newchannel", a.headers(state="Ring"))
        bridge = {"BridgeUniqueid": f"b{seq}", "BridgeType": "basic", "BridgeTechnology": "simple_bridge",
                  "BridgeCreator": "", "BridgeName": "", "BridgeNumChannels": "1"}  # fmt: skip
        self.feed("BridgeCreate", bridge)
        self.feed("BridgeEnter", {**caller.headers(), **bridge})
        self.feed("BridgeEnter", {**a.headers(), **bridge, "BridgeNumChannels": "2"})
        return a

    def press(self, agent: Chan, digits: str) -> None:
        for d in digits:
            self.feed("DTMFBegin", {**agent.headers(), "Digit": d, "Direction": "Received"})
            self.feed("DTMFEnd", {**agent.headers(), "Digit": d, "Direction": "Received", "DurationMs": "100"})

    def user_event(self, chan: Chan, name: str, **fields: str) -> None:
        self.feed("UserEvent", {**chan.headers(), "UserEvent": name, **fields})

    def dial(self, chan: Chan, dest: Chan, dial_string: str, status: str | None = None) -> None:
        if status is None:
            self.feed("DialBegin", {**chan.headers(), **dest.headers("Dest", "Down"), "DialString": dial_string})
        else:
            self.feed("DialEnd", {**chan.headers(), **dest.headers("Dest"), "DialStatus": status, "Forward": ""})

    def hangup(self, chan: Chan, cause: int = 16) -> None:
        self.feed("Hangup", {**chan.headers(), "Cause": str(cause), "Cause-txt": "Normal Clearing"})
