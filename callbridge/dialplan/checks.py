"""Cross-reference checks on a schema-valid dialplan (pure).

Each finding carries the field path it is about; the loader turns paths into file:line:column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from callbridge.dialplan.model import KEYED_SECTIONS, DialplanModel, Hotline, TransferRule
from callbridge.dialplan.plan import resolve_mode_rules

Path_ = tuple[str | int, ...]

#: failure steps that keep the caller connected to a person
SAFE_STEPS = frozenset({"back_to_agent", "origin_queue"})


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path_
    message: str
    severity: str = "error"
    at_key: bool = False
    #: the other place the finding is about (the loader names its file:line:column)
    also: Path_ | None = None


def cross_check(m: DialplanModel) -> list[Finding]:
    out: list[Finding] = []
    for check in (_ids_match_keys, _hotlines, _rules, _codes, _overflow, _modes, _nuisance, _reachability):
        out.extend(check(m))
    return out


def _ref(kind: str, name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none defined"
    return f"unknown {kind} {name!r}; expected one of: {names}"


def _ids_match_keys(m: DialplanModel) -> Iterator[Finding]:
    for section, id_field in KEYED_SECTIONS.items():
        for key, obj in getattr(m, section).items():
            if getattr(obj, id_field) != key:
                yield Finding(
                    (section, key, id_field),
                    f"{id_field} {getattr(obj, id_field)!r} differs from its key {key!r}"
                    f" (leave {id_field} out: the key is the {id_field})",
                )


def _hotlines(m: DialplanModel) -> Iterator[Finding]:
    did_owner: dict[str, tuple[str, int]] = {}
    for num, h in m.hotlines.items():
        base: Path_ = ("hotlines", num)
        yield from _hotline_trunks(m, base, h)
        yield from _hotline_queues(m, base, h)
        yield from _hotline_expert(m, base, h)
        yield from _hotline_dids(base, num, h, did_owner)
        yield from _hotline_reach(base, h)


def _hotline_trunks(m: DialplanModel, base: Path_, h: Hotline) -> Iterator[Finding]:
    for i, t in enumerate(h.inbound_trunks):
        if t not in m.trunks:
            yield Finding((*base, "inbound_trunks", i), _ref("trunk", t, m.trunks))
    if h.outbound_trunk is not None and h.outbound_trunk not in m.trunks:
        yield Finding((*base, "outbound_trunk"), _ref("trunk", h.outbound_trunk, m.trunks))


def _hotline_queues(m: DialplanModel, base: Path_, h: Hotline) -> Iterator[Finding]:
    for i, q in enumerate(h.agent_queues):
        if q not in m.queues:
            yield Finding((*base, "agent_queues", i), _ref("queue", q, m.queues))
        elif not m.queues[q].members:
            yield Finding((*base, "agent_queues", i), f"queue {q!r} has no members: nobody answers", "warning")


def _hotline_expert(m: DialplanModel, base: Path_, h: Hotline) -> Iterator[Finding]:
    if h.expert is None:
        return
    if h.expert.queue not in m.queues:
        yield Finding((*base, "expert", "queue"), _ref("queue", h.expert.queue, m.queues))
    for i, p in enumerate(h.expert.priorities):
        if p.origin is not None and p.origin not in m.hotlines:
            yield Finding((*base, "expert", "priorities", i, "origin"), _ref("hotline", p.origin, m.hotlines))
        if p.category is not None and p.category not in m.categories:
            yield Finding((*base, "expert", "priorities", i, "category"), _ref("category", p.category, m.categories))


def _hotline_dids(base: Path_, num: str, h: Hotline, did_owner: dict[str, tuple[str, int]]) -> Iterator[Finding]:
    """A DID belongs to one hotline: ``did_owner`` remembers the first to claim each."""
    for i, d in enumerate(h.dids):
        owner, index = did_owner.setdefault(d, (num, i))
        if owner != num:
            yield Finding(
                (*base, "dids", i),
                f"DID {d} already belongs to hotline {owner}",
                also=("hotlines", owner, "dids", index),
            )


def _hotline_reach(base: Path_, h: Hotline) -> Iterator[Finding]:
    if not h.agent_queues and h.outbound_trunk is None:
        yield Finding(
            base, "hotline has neither agent_queues nor an outbound_trunk: calls cannot reach anyone", at_key=True
        )
    if h.dids and not h.agent_queues:
        yield Finding((*base, "dids"), "calls arrive on these DIDs but the hotline has no agent_queues")


def _rules(m: DialplanModel) -> Iterator[Finding]:
    feature_codes = m.features.in_call_codes()
    for rid, r in m.rules.items():
        base: Path_ = ("rules", rid)
        src = m.hotlines.get(r.from_hotline)
        dst = m.hotlines.get(r.to_hotline)
        if src is None:
            yield Finding((*base, "from_hotline"), _ref("hotline", r.from_hotline, m.hotlines))
        elif not src.agent_queues:
            yield Finding((*base, "from_hotline"), f"hotline {r.from_hotline} has no local agents to press {r.code}")
        if dst is None:
            yield Finding((*base, "to_hotline"), _ref("hotline", r.to_hotline, m.hotlines))
        elif r.target == "expert" and dst.expert is None:
            yield Finding((*base, "target"), f"target 'expert' but hotline {r.to_hotline} has no expert seats")
        for i, c in enumerate(r.categories):
            if c not in m.categories:
                yield Finding((*base, "categories", i), _ref("category", c, m.categories))
        for feature, fcode in feature_codes.items():
            if r.code.startswith(fcode) or fcode.startswith(r.code):
                yield Finding(
                    (*base, "code"),
                    f"code {r.code!r} collides with the Asterisk feature code {feature}={fcode!r} (features.conf);"
                    " pick a code that is neither a prefix nor an extension of it",
                )
        yield from _failure_chain(m, r, src, dst)
        if r.carry_number and dst is not None and dst.outbound_trunk in m.trunks:
            nc = m.trunks[dst.outbound_trunk].number_carrying
            if not (nc.present_caller_id or nc.p_asserted_identity):
                yield Finding(
                    (*base, "carry_number"),
                    f"carry_number is on but trunk {dst.outbound_trunk!r} presents neither caller ID nor PAI",
                )


def _failure_chain(m: DialplanModel, r: TransferRule, src: Hotline | None, dst: Hotline | None) -> Iterator[Finding]:
    base: Path_ = ("rules", r.id, "failure")
    emergency = "emergency" in r.categories or any(h is not None and h.kind == "emergency" for h in (src, dst))
    if emergency and (not r.failure or r.failure[-1] == "hangup" or not SAFE_STEPS & set(r.failure)):
        chain = " → ".join(r.failure) or "(empty)"
        yield Finding(
            base,
            f"failure chain {chain} can end in a hang-up for an emergency call; "
            "end it with back_to_agent or origin_queue (an emergency caller is never dropped)",
        )
    if "backup_line" in r.failure and dst is not None:
        trunk = m.trunks.get(dst.outbound_trunk or "")
        if trunk is None or len(trunk.lines) < 2:
            yield Finding(
                (*base, r.failure.index("backup_line")),
                f"backup_line, but hotline {r.to_hotline} has no trunk with a backup line",
                "warning",
            )


def _agent_groups(m: DialplanModel, hotline: str) -> tuple[str, ...]:
    h = m.hotlines.get(hotline)
    return h.agent_queues if h is not None and h.agent_queues else (f"hotline:{hotline}",)


def _mode_names(m: DialplanModel) -> list[str]:
    return list(m.modes) or [m.start_mode]


def _active_rules(m: DialplanModel, mode: str) -> list[TransferRule]:
    if not m.modes:
        return list(m.rules.values())
    rule_ids, _ = resolve_mode_rules(m, mode)
    return [m.rules[r] for r in rule_ids if r in m.rules]


def _codes(m: DialplanModel) -> Iterator[Finding]:
    """One code means one rule for the agents of one group (queue) in one mode."""
    reported: set[tuple[str, str]] = set()
    for mode in _mode_names(m):
        seen: dict[tuple[str, str], TransferRule] = {}
        for r in _active_rules(m, mode):
            for group in _agent_groups(m, r.from_hotline):
                for (g, code), other in seen.items():
                    if g != group or other.id == r.id:
                        continue
                    pair = (min(other.id, r.id), max(other.id, r.id))
                    if code == r.code and pair not in reported:
                        reported.add(pair)
                        yield Finding(
                            ("rules", r.id, "code"),
                            f"code {r.code!r} is also used by rule {other.id!r} for the same agents ({group})"
                            f" in mode {mode!r}",
                        )
                    prefix = code.startswith(r.code) or r.code.startswith(code)
                    if code != r.code and prefix and pair not in reported:
                        reported.add(pair)
                        yield Finding(
                            ("rules", r.id, "code"),
                            f"code {r.code!r} and {code!r} (rule {other.id!r}) share a prefix: the shorter one"
                            " waits for the inter-digit timeout",
                            "warning",
                        )
                seen.setdefault((group, r.code), r)


def _overflow(m: DialplanModel) -> Iterator[Finding]:
    edges: dict[str, list[str]] = {}
    for oid, o in m.overflow.items():
        base: Path_ = ("overflow", oid)
        if o.queue not in m.queues:
            yield Finding((*base, "queue"), _ref("queue", o.queue, m.queues))
        if o.to_queue is not None:
            if o.to_queue not in m.queues:
                yield Finding((*base, "to_queue"), _ref("queue", o.to_queue, m.queues))
            edges.setdefault(o.queue, []).append(o.to_queue)
        if o.to_trunk is not None and o.to_trunk not in m.trunks:
            yield Finding((*base, "to_trunk"), _ref("trunk", o.to_trunk, m.trunks))
        s, rc = o.start, o.recover
        if s.waiting_calls is not None and rc.waiting_calls >= s.waiting_calls:
            yield Finding(
                (*base, "recover", "waiting_calls"),
                f"recover.waiting_calls {rc.waiting_calls} must be below start.waiting_calls {s.waiting_calls}"
                " (otherwise overflow flaps on and off)",
            )
        if s.longest_wait is not None and rc.longest_wait is not None and rc.longest_wait >= s.longest_wait:
            yield Finding(
                (*base, "recover", "longest_wait"),
                f"recover.longest_wait {rc.longest_wait} must be below start.longest_wait {s.longest_wait}",
            )
    loops: set[frozenset[str]] = set()
    for oid, o in m.overflow.items():
        if o.to_queue is None:
            continue
        path = [o.queue, o.to_queue]
        while path[-1] in edges and path[-1] != o.queue and len(path) <= len(edges) + 2:
            path.append(edges[path[-1]][0])
        if path[-1] == o.queue and frozenset(path) not in loops:
            loops.add(frozenset(path))  # one report per loop, at the overflow that closes it first
            yield Finding(("overflow", oid, "to_queue"), f"overflow chain loops: {' → '.join(path)}")


def _modes(m: DialplanModel) -> Iterator[Finding]:
    if m.modes and m.start_mode not in m.modes:
        yield Finding(("start_mode",), _ref("mode", m.start_mode, m.modes))
    mode_loops: set[frozenset[str]] = set()
    for name, mode in m.modes.items():
        base: Path_ = ("modes", name)
        for i, r in enumerate(mode.rules):
            if r not in m.rules:
                yield Finding((*base, "rules", i), _ref("rule", r, m.rules))
        for i, o in enumerate(mode.overflow):
            if o not in m.overflow:
                yield Finding((*base, "overflow", i), _ref("overflow", o, m.overflow))
        if mode.extends is not None:
            yield from _mode_extends(m, name, mode.extends, mode_loops)
    yield from _rules_in_no_mode(m)


def _mode_extends(m: DialplanModel, name: str, extends: str, mode_loops: set[frozenset[str]]) -> Iterator[Finding]:
    """``extends`` names a mode, and following it never leads back (each loop reported once, in ``mode_loops``)."""
    base: Path_ = ("modes", name, "extends")
    if extends not in m.modes:
        yield Finding(base, _ref("mode", extends, m.modes))
    seen = [name]
    cur: str | None = extends
    while cur in m.modes and cur not in seen:
        seen.append(cur)
        cur = m.modes[cur].extends
    if cur == name and frozenset(seen) not in mode_loops:
        mode_loops.add(frozenset(seen))
        yield Finding(base, f"modes extend each other in a loop: {' → '.join([*seen, name])}")


def _rules_in_no_mode(m: DialplanModel) -> Iterator[Finding]:
    if not m.modes:
        return
    used = {r for name in m.modes for r in resolve_mode_rules(m, name)[0]}
    for rid in m.rules:
        if rid not in used:
            yield Finding(("rules", rid), "rule is not active in any mode", "warning", at_key=True)


def _nuisance(m: DialplanModel) -> Iterator[Finding]:
    if m.nuisance is None:
        return
    for i, h in enumerate(m.nuisance.hotlines):
        if h not in m.hotlines:
            yield Finding(("nuisance", "hotlines", i), _ref("hotline", h, m.hotlines))
    if "notify_110" in m.nuisance.actions and "110" not in m.hotlines:
        yield Finding(("nuisance", "actions"), "action notify_110 but no hotline 110 is defined", "warning")


def _reachability(m: DialplanModel) -> Iterator[Finding]:
    targets = {r.to_hotline for r in m.rules.values()}
    for num, h in m.hotlines.items():
        if not h.dids and num not in targets:
            yield Finding(
                ("hotlines", num),
                "no DID and no transfer rule leads here: nobody can reach this hotline",
                "warning",
                at_key=True,
            )
