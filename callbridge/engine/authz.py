"""One authorisation for DTMF keys and MQTT commands.

A transfer is allowed when (1) the call exists, (2) the agent is a party of it — one of the agent's
channels is bridged with the caller — and (3) a rule active in the current mode allows this
from-hotline → to-hotline move for the call's category. Refusals are :class:`CommandError` with a
stable code, so MQTT replies, DTMF refusal events and logs say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callbridge.ami.event_types import ChannelSnapshot, endpoint_of
from callbridge.calls.model import Bridge, Call, Channel
from callbridge.dialplan.model import TransferRule
from callbridge.dialplan.plan import Dialplan
from callbridge.errors import CommandError


class CallView(Protocol):
    """What the engine reads from the call tracker (:class:`callbridge.calls.tracker.CallTracker`)."""

    @property
    def calls(self) -> Mapping[str, Call]: ...

    @property
    def bridges(self) -> Mapping[str, Bridge]: ...

    def channel(self, name_or_uniqueid: str) -> Channel | None: ...

    def bridge_peers(self, name_or_uniqueid: str) -> list[Channel]: ...


def interface_of(channel: str) -> str:
    """``PJSIP/agent1001-00000004`` → ``PJSIP/agent1001``; ``Local/2101@sim-0001;2`` → ``Local/2101@sim``."""
    tech = channel.split("/", 1)[0]
    return f"{tech}/{endpoint_of(channel)}" if "/" in channel else channel


def agent_name(agent: str) -> str:
    """The agent as events and records name it: the endpoint (``PJSIP/agent1001`` → ``agent1001``).

    Commands may name the agent either way; DTMF keys come from a channel (use :func:`endpoint_of` first).
    """
    return agent.split("/", 1)[1] if "/" in agent else agent


def same_agent(agent: str, channel: str) -> bool:
    """``agent`` may be given as an endpoint (``agent1001``) or an interface (``PJSIP/agent1001``)."""
    return endpoint_of(channel) == agent_name(agent)


def local_partner(channel: str) -> str | None:
    if channel.startswith("Local/") and channel[-2:] in (";1", ";2"):
        return channel[:-1] + ("2" if channel.endswith(";1") else "1")
    return None


def party_channels(view: CallView, caller_channel: str) -> list[str]:
    """Channels talking with the caller: bridge members, the agents behind Local hops, their halves."""
    caller = view.channel(caller_channel)
    if caller is None:
        return []
    names: dict[str, None] = {}
    bridge = view.bridges.get(caller.bridge_id or "")
    for uid in sorted(bridge.channels) if bridge else ():
        ch = view.channel(uid)
        if ch is not None and ch.uniqueid != caller.uniqueid:
            names[ch.name] = None
            partner = local_partner(ch.name)
            if partner is not None and view.channel(partner) is not None:
                names[partner] = None
    for ch in view.bridge_peers(caller.uniqueid):
        names[ch.name] = None
    if not names:  # not bridged yet (or any more): the leg its Dial answered
        names.update(dict.fromkeys(_answered_before_bridge(view, caller)))
    return list(names)


def _answered_before_bridge(view: CallView, caller: Channel) -> list[str]:
    """The leg the caller's Dial or Queue answered, and the Local hops and the party behind it, while the
    caller is not bridged yet: call.answered is published at that DialEnd, a moment before Asterisk's
    BridgeEnter, and the agent announced may act at once. Only the answered chain counts (a losing hop's
    party is no longer answered: the tracker drops it when its hop hangs up)."""
    names: list[str] = []
    leg = view.channel(caller.answered_dest) if caller.answered_dest else None
    while leg is not None and leg.answered is not None and len(names) < 16:
        names.append(leg.name)
        partner = local_partner(leg.name)
        inner = view.channel(partner) if partner is not None else None
        if inner is None:
            break
        names.append(inner.name)
        leg = view.channel(inner.answered_dest) if inner.answered_dest else None
    return names


@dataclass(frozen=True, slots=True)
class Grant:
    call: Call
    rule: TransferRule
    caller_channel: str
    agent_channel: str  # the agent's channel bridged with the caller (what Redirect/Atxfer act on)
    agent_interface: str
    from_hotline: str
    category: str


def find_agent_channel(view: CallView, call: Call, agent: str, hint: str | None = None) -> str:
    """The agent's channel bridged with the caller; ``hint`` is the channel a DTMF digit came from."""
    parties = party_channels(view, call.caller_channel)
    if hint is not None:
        candidates = [hint, *([p] if (p := local_partner(hint)) else [])]
        for c in candidates:
            if c in parties:
                # Redirect/Atxfer act on the channel in the caller's bridge (the ;1 half of a Local)
                return c if not c.endswith(";2") else (local_partner(c) or c)
    else:
        for name in parties:
            if same_agent(agent, name) and not name.endswith(";2"):
                return name
        for name in parties:
            if same_agent(agent, name):
                return local_partner(name) or name
    raise CommandError("not_a_party", f"agent {agent!r} is not talking with the caller of call {call.call_id}")


def authorise(
    view: CallView,
    plan: Dialplan,
    mode: str,
    *,
    call_id: str,
    agent: str,
    to_hotline: str | None = None,
    code: str | None = None,
    category: str | None = None,
    agent_channel: str | None = None,
) -> Grant:
    call = view.calls.get(call_id)
    if call is None or not call.caller_channel or view.channel(call.caller_channel) is None:
        raise CommandError("unknown_call", f"no live call {call_id!r} on this PBX")
    channel = find_agent_channel(view, call, agent, agent_channel)
    interface = interface_of(channel)
    agent_hotline = plan.hotline_of_agent(interface)
    from_hotline = agent_hotline.number if agent_hotline is not None else (call.hotline or "")
    if not from_hotline:
        raise CommandError("no_rule", f"agent {agent!r} belongs to no hotline and call {call_id} has none")
    rule: TransferRule | None
    if code is not None:
        rule = plan.rule_for_code(from_hotline, code, mode)
        if rule is None:
            raise CommandError(
                "no_rule", f"code {code!r} is not a one-key code of hotline {from_hotline} in mode {mode}"
            )
    else:
        candidates = [r for r in plan.rules_from(from_hotline, mode) if r.to_hotline == to_hotline]
        if not candidates:
            raise CommandError("no_rule", f"no rule allows {from_hotline} → {to_hotline} in mode {mode}")
        served = [r for r in candidates if plan.serves_category(r, category)] if category else candidates
        if not served:
            raise CommandError(
                "category_not_allowed",
                f"{from_hotline} → {to_hotline} is not allowed for category {category!r} in mode {mode}",
            )
        # the most specific rule wins: one naming the category, with the fewest categories
        rule = min(served, key=lambda r: (not r.categories, len(r.categories)))
    if category and not plan.serves_category(rule, category):
        raise CommandError("category_not_allowed", f"rule {rule.id} does not serve category {category!r}")
    chosen = category or (rule.categories[0] if rule.categories else "")
    return Grant(call=call, rule=rule, caller_channel=call.caller_channel, agent_channel=channel,
                 agent_interface=interface, from_hotline=from_hotline, category=chosen)  # fmt: skip


def _hotline(plan: Dialplan, snap: ChannelSnapshot, root: bool, by_endpoint: dict[str, str | None]) -> str | None:
    """:func:`hotline_of`'s answer on ``plan``, the trunk scan cached in ``by_endpoint`` (bounded)."""
    if snap.context == "cb-inbound" or root:
        h = plan.hotline_of_did(snap.exten)
        if h is not None:
            return h.number
    # a leg on a hotline's outbound trunk (PJSIP/110@hotline-110 → channel PJSIP/hotline-110-…)
    endpoint = endpoint_of(snap.channel)
    if endpoint in by_endpoint:
        return by_endpoint[endpoint]
    found = None
    for h in plan.hotlines.values():
        if any(line.rpartition("@")[2] == endpoint for line in plan.lines_for(h.number)):
            found = h.number
            break
    if len(by_endpoint) >= 4096:
        by_endpoint.clear()
    by_endpoint[endpoint] = found
    return found


def hotline_of(engine_plan: Callable[[], Dialplan]) -> Callable[[ChannelSnapshot], str | None]:
    """The tracker's ``hotline_of``: an inbound channel's DID → hotline, read from the current dialplan.

    The trunk scan's answer per endpoint is cached for the plan it was computed on (the tracker asks
    for every snapshot of every channel: the scan was ≈ 4 % of the AMI → MQTT path); a reload brings a
    new plan object and so an empty cache. Bounded: emptied at 4,096 endpoints.
    """
    answered_for: list[Dialplan] = []  # the plan the cached answers are for
    by_endpoint: dict[str, str | None] = {}
    # The whole answer per (channel, context, exten, root of its call): the tracker asks again for each new
    # snapshot of a caller whose call has no hotline yet (most of them differ in other fields only).
    by_snapshot: dict[tuple[str, str, str, bool], str | None] = {}

    def lookup(snap: ChannelSnapshot) -> str | None:
        plan = engine_plan()
        if not answered_for or answered_for[0] is not plan:
            answered_for[:] = [plan]
            by_endpoint.clear()
            by_snapshot.clear()
        key = (snap.channel, snap.context, snap.exten, snap.uniqueid == snap.linkedid)
        try:
            return by_snapshot[key]
        except KeyError:
            pass
        found = _hotline(plan, snap, key[3], by_endpoint)
        if len(by_snapshot) >= 4096:
            by_snapshot.clear()
        by_snapshot[key] = found
        return found

    return lookup
