"""The lines a three-way hand-over calls into the room are announced (``threeway.leg_called``) before
they exist at the PBX, so everything downstream can tell callbridge's own legs from citizens' calls."""

from __future__ import annotations

from callbridge.ami.actions import Originate
from callbridge.engine import events as ev
from callbridge.engine.effects import Publish, SendActions
from tests.engine.pbx import CALLER, Chan, Pbx


def originates_and_announcements(pbx: Pbx) -> list[tuple[str, str]]:
    """In effect order: ("called", leg call id) per announcement, ("originate", ChannelId) per Originate."""
    out: list[tuple[str, str]] = []
    for effect in pbx.take():
        if isinstance(effect, Publish) and isinstance(effect.event, ev.ThreewayLegCalled):
            out.append(("called", effect.event.leg_call_id))
        elif isinstance(effect, SendActions):
            out += [("originate", a.channel_id or "") for a in effect.actions if isinstance(a, Originate)]
    return out


def test_each_line_called_in_is_announced_with_its_call_id_before_its_originate() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.press(agent, "*3")  # r-12345-120-threeway: failure [backup_line, back_to_agent]
    pbx.take()
    pbx.result("xfer:x1:start")
    published = [e for e in pbx.published() if isinstance(e, ev.ThreewayLegCalled)]
    assert originates_and_announcements(pbx) == [("called", "x1-leg0"), ("originate", "x1-leg0")]
    [first] = published
    assert (first.call_id, first.transfer_id, first.to_hotline, first.line, first.room) == (
        caller.linkedid, "x1", "120", "PJSIP/120@hotline-120", "cb-x1")  # fmt: skip
    assert first.also_hotlines() == ("120",)  # 120's software learns the leg's call id too

    # the primary line is busy: the backup line is a new leg, announced the same way
    pbx.feed("OriginateResponse", {"Response": "Failure", "Channel": "PJSIP/120@hotline-120", "Context": "cb-conf",
                                   "Exten": "cb-x1", "Reason": "5", "Uniqueid": "x1-leg0", "CallerIDNum": CALLER,
                                   "CallerIDName": ""})  # fmt: skip
    assert originates_and_announcements(pbx) == [("called", "x1-leg1"), ("originate", "x1-leg1")]


def test_the_leg_presenting_the_citizens_number_is_not_another_call_of_that_citizen() -> None:
    """Nuisance threshold 5 in 10 min: four calls of one citizen, then the three-way leg presenting the same
    number at 120 — the citizen called four times, not five."""
    pbx = Pbx()
    number = "13955556666"
    calls = [pbx.call(num=number, seq=seq) for seq in range(1, 5)]
    agent = pbx.answer_by(calls[-1], seq=4)
    pbx.press(agent, "*3")
    pbx.result("xfer:x1:start")
    leg = Chan("PJSIP/hotline-120-0000000a", "x1-leg0", "x1-leg0", number, "cb-conf", "cb-x1")
    derived = pbx.feed("Newchannel", leg.headers(state="Down"))
    assert [d.TYPE for d in derived] == ["call.offered"]  # at the PBX it is a call of its own …
    assert not [e for e in pbx.published() if isinstance(e, ev.NuisanceFlagged)]  # … not a fifth call
    fifth = pbx.call(num=number, seq=5)  # the citizen's real fifth call (to 12345) is the one flagged
    flagged = [e for e in pbx.published() if isinstance(e, ev.NuisanceFlagged)]
    assert [(f.call_id, f.count) for f in flagged] == [(fifth.linkedid, 5)]
