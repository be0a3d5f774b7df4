"""Bridges: basic two-party bridges and ConfBridge (softmix) rooms (sans-IO data + header helpers)."""

from __future__ import annotations

from collections.abc import Callable

from callbridge.sim.channels import Channel

# What happens to a channel when it is pushed out of a bridge (peer gone, transfer, kick).
AfterBridge = Callable[[Channel], None]


class Bridge:
    __slots__ = ("after", "announcer", "conference", "members", "technology", "type", "uniqueid")

    def __init__(self, uniqueid: str, kind: str = "basic", technology: str = "simple_bridge") -> None:
        self.uniqueid = uniqueid
        self.type = kind
        self.technology = technology
        self.members: list[Channel] = []
        self.after: dict[str, AfterBridge] = {}
        # ConfBridge counts its hidden CBAnn/<conf> announcer in BridgeNumChannels (no BridgeEnter for it).
        self.announcer = False
        self.conference = ""

    @property
    def num_channels(self) -> int:
        return len(self.members) + (1 if self.announcer else 0)

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", self.type),
            ("BridgeTechnology", self.technology),
            ("BridgeCreator", "ConfBridge" if self.conference else "<unknown>"),
            ("BridgeName", self.conference or "<unknown>"),
            ("BridgeNumChannels", str(self.num_channels)),
            ("BridgeVideoSourceMode", "none"),
        ]

    def peers_of(self, chan: Channel) -> list[Channel]:
        return [m for m in self.members if m is not chan]
