"""The frozen, indexed dialplan the engine reads (pure: no I/O).

Built once per load from a checked :class:`~callbridge.dialplan.model.DialplanModel`; a hot reload builds
a new one and swaps the reference, so readers never see half a dialplan.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from callbridge.dialplan.model import (
    DialplanModel,
    EngineOptions,
    Features,
    Hotline,
    Mode,
    NuisancePolicy,
    Overflow,
    Queue,
    TransferRule,
    Trunk,
)


def resolve_mode_rules(model: DialplanModel, mode: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rule ids and overflow ids active in *mode*, following ``extends`` (cycles stop silently here;
    the checks report them)."""
    rules: list[str] = []
    overflow: list[str] = []
    seen: set[str] = set()
    chain: list[Mode] = []
    name: str | None = mode
    while name is not None and name not in seen and name in model.modes:
        seen.add(name)
        chain.append(model.modes[name])
        name = model.modes[name].extends
    for m in reversed(chain):  # base first, so order is stable: inherited rules, then own rules
        rules.extend(r for r in m.rules if r not in rules)
        overflow.extend(o for o in m.overflow if o not in overflow)
    return tuple(rules), tuple(overflow)


class Dialplan:
    """Read-only view with the lookups the engine needs. Unknown names raise ``KeyError``."""

    __slots__ = (
        "_agent_hotline",
        "_did_hotline",
        "_mode_overflow",
        "_mode_rules",
        "_queue_hotline",
        "_trunk_hotline",
        "model",
        "sources",
    )

    def __init__(self, model: DialplanModel, sources: tuple[str, ...] = ()) -> None:
        self.model = model
        self.sources = sources
        did: dict[str, str] = {}
        queue: dict[str, str] = {}
        agent: dict[str, str] = {}
        trunk: dict[str, str] = {}
        for h in model.hotlines.values():
            for d in h.dids:
                did.setdefault(d, h.number)
            for q in h.agent_queues:
                queue.setdefault(q, h.number)
                for m in model.queues[q].members if q in model.queues else ():
                    agent.setdefault(m, h.number)
            if h.expert is not None:
                queue.setdefault(h.expert.queue, h.number)
                for m in model.queues[h.expert.queue].members if h.expert.queue in model.queues else ():
                    agent.setdefault(m, h.number)
            for t in h.inbound_trunks:
                trunk.setdefault(t, h.number)
        self._did_hotline = MappingProxyType(did)
        self._queue_hotline = MappingProxyType(queue)
        self._agent_hotline = MappingProxyType(agent)
        self._trunk_hotline = MappingProxyType(trunk)
        mode_rules: dict[str, tuple[TransferRule, ...]] = {}
        mode_overflow: dict[str, tuple[Overflow, ...]] = {}
        for name in model.modes:
            rule_ids, overflow_ids = resolve_mode_rules(model, name)
            mode_rules[name] = tuple(model.rules[r] for r in rule_ids if r in model.rules)
            mode_overflow[name] = tuple(model.overflow[o] for o in overflow_ids if o in model.overflow)
        if not model.modes:  # no modes declared: one implicit start mode with everything active
            mode_rules[model.start_mode] = tuple(model.rules.values())
            mode_overflow[model.start_mode] = tuple(model.overflow.values())
        self._mode_rules = MappingProxyType(mode_rules)
        self._mode_overflow = MappingProxyType(mode_overflow)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError(f"Dialplan is frozen; cannot set {name}")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dialplan) and self.model == other.model

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.model.hotlines)))

    # --- sections ---
    @property
    def hotlines(self) -> Mapping[str, Hotline]:
        return MappingProxyType(self.model.hotlines)

    @property
    def trunks(self) -> Mapping[str, Trunk]:
        return MappingProxyType(self.model.trunks)

    @property
    def queues(self) -> Mapping[str, Queue]:
        return MappingProxyType(self.model.queues)

    @property
    def rules(self) -> Mapping[str, TransferRule]:
        return MappingProxyType(self.model.rules)

    @property
    def overflows(self) -> Mapping[str, Overflow]:
        return MappingProxyType(self.model.overflow)

    @property
    def modes(self) -> Mapping[str, Mode]:
        return MappingProxyType(self.model.modes)

    @property
    def start_mode(self) -> str:
        return self.model.start_mode

    @property
    def nuisance(self) -> NuisancePolicy | None:
        return self.model.nuisance

    @property
    def engine(self) -> EngineOptions:
        return self.model.engine

    @property
    def features(self) -> Features:
        return self.model.features

    @property
    def categories(self) -> Mapping[str, str]:
        return MappingProxyType(self.model.categories)

    # --- lookups ---
    def hotline(self, number: str) -> Hotline:
        return self.model.hotlines[number]

    def trunk(self, name: str) -> Trunk:
        return self.model.trunks[name]

    def queue(self, name: str) -> Queue:
        return self.model.queues[name]

    def rule(self, rule_id: str) -> TransferRule:
        return self.model.rules[rule_id]

    def hotline_of_did(self, did: str) -> Hotline | None:
        number = self._did_hotline.get(did)
        return None if number is None else self.model.hotlines[number]

    def hotline_of_queue(self, queue: str) -> Hotline | None:
        """The hotline owning an agent or expert queue."""
        number = self._queue_hotline.get(queue)
        return None if number is None else self.model.hotlines[number]

    def hotline_of_agent(self, interface: str) -> Hotline | None:
        """The hotline whose queues list this member interface (e.g. ``PJSIP/agent1001``)."""
        number = self._agent_hotline.get(interface)
        return None if number is None else self.model.hotlines[number]

    def hotline_of_trunk(self, trunk: str) -> Hotline | None:
        """The hotline whose ``inbound_trunks`` include *trunk*."""
        number = self._trunk_hotline.get(trunk)
        return None if number is None else self.model.hotlines[number]

    def rules_in(self, mode: str | None = None) -> tuple[TransferRule, ...]:
        """Rules active in *mode* (default: the start mode)."""
        return self._mode_rules[mode or self.model.start_mode]

    def overflows_in(self, mode: str | None = None) -> tuple[Overflow, ...]:
        return self._mode_overflow[mode or self.model.start_mode]

    def rules_from(self, hotline: str, mode: str | None = None) -> tuple[TransferRule, ...]:
        return tuple(r for r in self.rules_in(mode) if r.from_hotline == hotline)

    def rule_for_code(self, from_hotline: str, code: str, mode: str | None = None) -> TransferRule | None:
        """The rule an agent of *from_hotline* triggers by pressing *code* in *mode* (checks make it unique)."""
        for r in self.rules_in(mode):
            if r.from_hotline == from_hotline and r.code == code:
                return r
        return None

    def codes_for(self, from_hotline: str, mode: str | None = None) -> frozenset[str]:
        """All one-key codes agents of *from_hotline* may press in *mode* (for DTMF prefix matching)."""
        return frozenset(r.code for r in self.rules_from(from_hotline, mode))

    def lines_for(self, hotline: str) -> tuple[str, ...]:
        """Dial strings reaching *hotline*, primary first then backups; ``()`` when it is served locally."""
        h = self.model.hotlines[hotline]
        if h.outbound_trunk is None:
            return ()
        return self.model.trunks[h.outbound_trunk].lines

    def trunk_to(self, hotline: str) -> Trunk | None:
        h = self.model.hotlines[hotline]
        return None if h.outbound_trunk is None else self.model.trunks[h.outbound_trunk]

    def agent_queue(self, hotline: str) -> str | None:
        """The main agent queue of *hotline* (first of ``agent_queues``)."""
        h = self.model.hotlines[hotline]
        return h.agent_queues[0] if h.agent_queues else None

    def expert_queue(self, hotline: str) -> str | None:
        h = self.model.hotlines[hotline]
        return None if h.expert is None else h.expert.queue

    def expert_priority(self, to_hotline: str, origin: str | None, category: str | None) -> int:
        """Queue priority for a call entering *to_hotline*'s expert queue; first matching entry wins."""
        h = self.model.hotlines[to_hotline]
        if h.expert is None:
            return 0
        for p in h.expert.priorities:
            if (p.origin is None or p.origin == origin) and (p.category is None or p.category == category):
                return p.priority
        return h.expert.default_priority

    def nuisance_in(self, mode: str | None = None) -> NuisancePolicy | None:
        """The nuisance policy if it applies in *mode* (a mode may switch it off, e.g. in an emergency)."""
        name = mode or self.model.start_mode
        m = self.model.modes.get(name)
        if m is not None and not m.nuisance:
            return None
        return self.model.nuisance

    def serves_category(self, rule: TransferRule, category: str | None) -> bool:
        return not rule.categories or (category is not None and category in rule.categories)
