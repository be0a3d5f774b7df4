"""Local channel pairs as one hop: who really stands behind a channel, who is bridged with whom.

A ``Local/x@ctx;1``/``;2`` pair is a hop, not a party: ``;1`` is dialled (or bridged), ``;2`` runs the
dialplan and dials (or is bridged with) the real phone. A Local channel whose ``;2`` dials nothing (it
answers in the dialplan: an IVR, a simulated phone) is itself the party. Queries only: nothing here changes
the state.
"""

from __future__ import annotations

from callbridge.calls.model import Channel
from callbridge.calls.state import TrackerState

_DEPTH = 8  # chained hops followed at most (a loop of Local channels must not hang the tracker)


def parties(s: TrackerState, call_id: str) -> list[Channel]:
    """The call's endpoints, caller first, with each Local pair counted once: a pair is left out when a real
    channel stands behind it (its ``;2`` is bridged), and counted by its ``;1`` half when it ends in the
    dialplan (a phone simulated by ``Local/2001@sim``, an application)."""
    call = s.calls.get(call_id)
    if call is None:
        return []
    chans = [s.channels[u] for u in call.channels if u in s.channels]
    real = [c for c in chans if not c.is_local or c.role == "caller" or _is_terminal_hop(s, c)]
    return sorted(real, key=lambda c: (c.role != "caller", c.created, c.uniqueid))


def _is_terminal_hop(s: TrackerState, ch: Channel) -> bool:
    if ch.local_half != "1" or ch.fronts:
        return False  # ``fronts``: its ;2 dialled the real party, a hop
    partner = s.local_partner(ch)
    if partner is None or partner.state_desc != "Up":
        return False  # its ;2 is not there or has not answered in the dialplan: it may still dial someone
    bridge = s.bridges.get(partner.bridge_id or "")
    return bridge is None or len(bridge.channels) < 2


def bridge_peers(s: TrackerState, name_or_uniqueid: str) -> list[Channel]:
    """Who is bridged with this channel, looking through Local hops (``;1`` in one bridge, ``;2`` in another)
    so that a caller bridged to ``Local/1002@internal;1`` sees the agent behind it. A hop with nobody behind
    it (a Local channel ending in the dialplan) is itself the peer."""
    start = s.channel(name_or_uniqueid)
    if start is None:
        return []
    return _peers_of(s, start, {start.uniqueid})


def _peers_of(s: TrackerState, ch: Channel, seen: set[str]) -> list[Channel]:
    peers: list[Channel] = []
    bridge = s.bridges.get(ch.bridge_id or "")
    for uid in sorted(bridge.channels) if bridge else ():
        peer = s.channels.get(uid)
        if peer is None or uid in seen:
            continue
        seen.add(uid)
        partner = s.local_partner(peer) if peer.is_local and peer.role != "caller" else None
        behind: list[Channel] = []
        if partner is not None and partner.uniqueid not in seen:
            seen.add(partner.uniqueid)
            behind = _peers_of(s, partner, seen)
        peers.extend(behind or [peer])
    return peers


def real_party(s: TrackerState, ch: Channel, depth: int = 0) -> Channel | None:
    """The non-Local channel a Local ``;1`` stands for (following chained hops), ``None`` when nothing real
    is behind it (yet). Answered legs first, then legs still being dialled, then the ``;2``'s bridge peers."""
    if not ch.is_local or ch.role == "caller":
        return ch
    partner = s.local_partner(ch)
    if partner is None or depth > _DEPTH:
        return None
    for uid in (partner.answered_dest, *sorted(partner.dialing)):
        behind = s.channels.get(uid) if uid else None
        if behind is not None:
            found = real_party(s, behind, depth + 1)
            if found is not None:
                return found
    return None


def answered_party(s: TrackerState, ch: Channel, depth: int = 0) -> Channel | None:
    """The channel that answered behind a Local ``;1`` (following chained hops by their answered legs only),
    ``None`` while some hop of the chain has no answered leg; a non-Local channel is its own party."""
    if not ch.is_local or ch.role == "caller":
        return ch
    partner = s.local_partner(ch)
    behind = s.channels.get(partner.answered_dest) if partner is not None and partner.answered_dest else None
    if behind is None or depth > _DEPTH:
        return None
    return answered_party(s, behind, depth + 1)


def unanswered_front(s: TrackerState, ch: Channel) -> Channel | None:
    """The Local ``;1`` in front of ``ch`` (a ``;2``) while the Dial or Queue that rang that ``;1`` has not seen
    it answer: what answers ``ch``'s own Dial is then only *pending* — Asterisk may still connect another leg
    of the outer Dial (queue ``ringall``, ring groups) and hang this hop up. ``None`` when ``ch`` is not such
    a ``;2``: its ``;1`` is the call's origin (Originate) or was not dialled by a channel (Atxfer's consult
    leg, bridged by the transfer itself), or it was answered already."""
    if ch.local_half != "2" or ch.role == "caller":
        return None
    front = s.local_partner(ch)
    if front is None or front.role == "caller" or not front.dialed_by or front.answered is not None:
        return None
    return front


def front_gone(s: TrackerState, ch: Channel) -> bool:
    """``ch`` is the ``;2`` of a Local pair whose ``;1`` already hung up: a losing hop (its outer Dial
    connected another leg) whose phone answered too late — seen live, after the queue connected the winner."""
    return ch.local_half == "2" and ch.role != "caller" and s.local_partner(ch) is None


def dials_behind_a_hop(s: TrackerState, ch: Channel) -> bool:
    """``ch`` is the ``;2`` of a Local pair whose ``;1`` was dialled by another channel (or is gone): its own
    Dial's outcome is the hop's, and only the outer Dial's (or Queue's) says what the caller got."""
    if ch.local_half != "2" or ch.role == "caller":
        return False
    front = s.local_partner(ch)
    return front is None or (front.role != "caller" and bool(front.dialed_by))


def is_hop(s: TrackerState, ch: Channel) -> bool:
    """A Local channel with a real party behind it (or still being looked for behind it)."""
    if not ch.is_local or ch.role == "caller":
        return False
    if ch.fronts:
        return True
    partner = s.local_partner(ch)
    return partner is not None and bool(partner.dialing or partner.answered_dest)
