"""After a resync: each unfinished transfer decided from the PBX's picture, never by sending again (pure).

A transfer whose start actions had an unknown outcome (the connection dropped after writing) is moved
on when the picture shows they took effect, failed (``ami_outcome_unknown``) when it does not; events
missed while disconnected are read from where the caller is now (answered, back with the agent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callbridge.ami.event_types import endpoint_of
from callbridge.engine import transfer as tx
from callbridge.engine.authz import same_agent
from callbridge.engine.observe import STARTED
from callbridge.engine.transfer import Transfer, TState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from callbridge.calls.model import Channel
    from callbridge.engine.authz import CallView
    from callbridge.engine.steps import Steps

S = TState

#: Contexts of the rendered dialplan a caller is in once a start action took effect.
_MOVED_CONTEXTS = ("cb-to-", "cb-expert-", "cb-conf", "cb-back")


class Reconciler:
    """Reads the resynced call picture (``view``) and moves transfers with ``steps``."""

    __slots__ = ("steps", "view")

    def __init__(self, view: CallView, steps: Steps) -> None:
        self.view = view
        self.steps = steps

    def reconcile(self, t: Transfer, now: float) -> None:
        caller = self.view.channel(t.caller_channel)
        if caller is None:
            if t.state is S.ANSWERED:
                self.steps.closed(t, now)
            else:
                self.steps.fail(t, "caller_hangup", now)
            return
        if t.state is not S.UNKNOWN:
            self.catch_up(t, now)
            return
        moved = caller.context.startswith(_MOVED_CONTEXTS) or (
            t.agent_channel not in {p.name for p in self.view.bridge_peers(caller.uniqueid)}
            and self.view.channel(t.agent_channel) is not None
            and t.mode != "attended"
        )
        if not moved and t.mode == "attended":  # an Atxfer whose reply was lost: is its consultation up?
            leg = self.consultation_leg(t)
            if leg is not None:
                t.route_channel, moved = leg, True
        if not moved:
            self.steps.fail(t, "ami_outcome_unknown", now)
            return
        tx.move(t, STARTED[t.mode], now, "resync shows the action took effect")
        if t.mode == "threeway":
            self.steps.room_ready(t, now)
        else:
            self.catch_up(t, now)

    def consultation_leg(self, t: Transfer) -> str | None:
        """The channel of the transfer's call (same linkedid) that runs the target context (the Atxfer's
        consultation leg, as ``CallbridgeTarget`` would have named it), or None."""
        call = self.view.calls.get(t.call_id)
        for uid in sorted(call.channels) if call is not None else ():
            ch = self.view.channel(uid)
            if ch is not None and ch.name != t.caller_channel and ch.context.startswith(("cb-to-", "cb-expert-")):
                return ch.name
        return None

    def catch_up(self, t: Transfer, now: float) -> None:
        """Events missed while disconnected: read where the caller is now from the resynced picture."""
        if t.state in tx.TERMINAL or t.mode == "threeway":
            return
        caller = self.view.channel(t.caller_channel)
        if caller is None:
            return
        peers = self.view.bridge_peers(caller.uniqueid)
        if t.mode == "attended" and t.route_channel and self.view.channel(t.route_channel) is None and any(
            same_agent(t.agent, peer.name) for peer in peers
        ):  # the consultation is over and the caller is back with the agent (a cancel whose reply was lost)
            self.steps.returned(t, t.last_failure or "back_to_agent", now)
            return
        if t.state is S.ANSWERED:
            return
        line_endpoints = {line.rpartition("@")[2] for line in t.lines if "@" in line}
        for peer in peers:
            endpoint = endpoint_of(peer.name)
            queue_agent = bool(peer.queue) and not same_agent(t.agent, peer.name)
            if endpoint in line_endpoints or peer.name == t.dest_channel or queue_agent:
                t.line = next((ln for ln in t.lines if ln.endswith("@" + endpoint)), t.line or peer.queue)
                self.steps.answered(t, tx.snapshot_of(peer), now)
                return
            if same_agent(t.agent, peer.name) and t.mode == "blind":
                self.steps.returned(t, t.last_failure or "back_to_agent", now)
                return
        target = self.answered_elsewhere(t, peers)
        if target is not None:
            self.steps.answered(t, tx.snapshot_of(target), now)

    @staticmethod
    def answered_elsewhere(t: Transfer, peers: Sequence[Channel]) -> Channel | None:
        """A redirected caller bridged with someone who is not the agent: the target answered while the
        connection was down (a queue member's Local channel, say, whose queue the resync cannot name)."""
        if t.mode == "attended":  # the caller waits on hold alone; bridged elsewhere only once completed
            return None
        return next((p for p in peers if not same_agent(t.agent, p.name) and p.name != t.agent_channel), None)
