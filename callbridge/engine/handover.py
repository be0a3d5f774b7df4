"""The three-way hand-over deadline (dialplan ``engine.handover_timeout``: max seconds of a hand-over).

The hand-over starts when caller and sending agent are in the room (``threeway.started``) and is over
when the destination has joined and — with the rule's ``agent_leaves`` — the sending agent has left.
When the deadline passes first:

* the destination has not joined (every line still ringing, or backup lines being tried): calling in
  stops, the leg being called in is hung up (never the caller) and the transfer is ``returned`` with
  reason ``handover_timeout`` — caller and agent stay together in the room, as after any failed call-in;
* the destination joined but the sending agent is still in the room although the rule says it leaves
  (the kick at the join failed or was lost with the AMI connection): it is kicked again now.

Pure: the engine arms the timer (:data:`StartTimer`) when the room is ready and applies the verdict.
"""

from __future__ import annotations

from typing import Literal

from callbridge.engine.transfer import TERMINAL, Transfer, TState

TIMER_KIND = "handover"
REASON = "handover_timeout"

Verdict = Literal["give_up", "kick_agent", "nothing"]


def timer_key(transfer_id: str) -> str:
    return f"{TIMER_KIND}:{transfer_id}"


def verdict(t: Transfer) -> Verdict:
    if t.mode != "threeway" or t.caller_gone:
        return "nothing"
    if t.state is TState.ANSWERED:
        return "kick_agent" if t.rule.agent_leaves and not t.agent_left else "nothing"
    if t.state in TERMINAL:
        return "nothing"
    return "give_up"
