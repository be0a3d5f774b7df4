"""Channels and calls ending: a channel hung up or vanished, a call lost its last channel.

A channel leaving is felt everywhere: its bridge, the queues and rooms it was in (:mod:`.rooms`), the
transfers it was an attempt or the transferee of (:mod:`.transfers`), and its call, which ends with its last
channel. Both are remembered as gone (bounded) so that late events do not bring them back.
"""

from __future__ import annotations

from callbridge.calls import builders as make
from callbridge.calls import rooms, transfers
from callbridge.calls.model import Call, States
from callbridge.calls.state import Out, TrackerState


def remove_channel(s: TrackerState, uid: str, out: Out, cause: int | None = None, cause_txt: str = "",
                   reason: str = "hangup", tech_cause: str = "") -> None:  # fmt: skip
    """Forget a channel (hang-up or vanished); end its call when it was the call's last channel."""
    ch = s.channels.pop(uid, None)
    s.forget(uid)
    if ch is None:
        return
    if s.by_name.get(ch.name) == uid:
        del s.by_name[ch.name]
    if ch.bridge_id:  # mostly None by now (BridgeLeave came first); "" is never a bridge id
        bridge = s.bridges.get(ch.bridge_id)
        if bridge is not None:
            bridge.channels.discard(uid)
    rooms.channel_gone(s, ch, out)
    call = ch.call
    if call is None:
        return
    call.channels.discard(uid)
    if ch.role == "caller" or call.cause is None:
        call.cause, call.cause_txt = cause, cause_txt
    if call.transfers:
        transfers.channel_gone(s, call, ch, cause, tech_cause, out)
    if not call.channels:
        end_call(s, call, out, reason)


def end_call(s: TrackerState, call: Call, out: Out, reason: str) -> None:
    """The call is over (its last channel left, the PBX restarted): its open transfers fail, call.ended."""
    if not call.offered:
        s.offer(call, out)
    if call.transfers:
        transfers.call_ended(s, call, out)
    reason = "pickup" if call.picked_up and reason == "hangup" else reason  # the picker's own leg
    s.set_state(call, States.ENDED, reason)
    del s.calls[call.call_id]
    s.forget(call.call_id)
    lasted = s.now - call.created
    out.append(
        make.CallEnded(
            ts=s.now, call_id=call.call_id, hotline=call.hotline, cause=call.cause, cause_txt=call.cause_txt,
            # max(0.0, lasted) without the builtin call: 0.0 too when lasted is 0.0, -0.0 or NaN
            duration_s=round(lasted if lasted > 0.0 else 0.0, 3), caller_num=call.caller_num, reason=reason,
            answered=call.answered is not None or call.picked_up,
        )
    )  # fmt: skip
