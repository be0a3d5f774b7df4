"""What the live Asterisk 22 showed (tests/live), held on the simulator with a real ``App`` over TCP AMI.

A trunk that never answers the INVITE at all (SIP timer B: 408, Hangup cause 18) ends ``Dial`` with
DIALSTATUS ``NOANSWER``, the same word as a trunk that rang until the timeout. The live run of 12345 →
96069 (utility-heating, nothing listening) was reported ``noanswer``; a leg that never rang is unreachable.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import agent_endpoint, command, open_lab


async def _transfer_to_heating(tmp_path: Path, behaviour: str, **timings: float) -> tuple[str, str]:
    async with open_lab(tmp_path) as lab:
        lab.sim.endpoints.set_behaviour("utility-heating", behaviour, **timings)
        chan, agent = await lab.answered_call("12345")
        call_id = lab.sim.channel(chan).linkedid  # type: ignore[union-attr]
        assert lab.app.service is not None
        await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                             to_hotline="96069", category="heating"))  # fmt: skip
        returned = await lab.event("transfer.returned", timeout=20)
        rang = [e for e in lab.events if e.TYPE == "transfer.ringing"]
        return str(returned.reason), str(rang[0].line if rang else "")  # type: ignore[attr-defined]


async def test_a_line_that_never_rings_before_timer_b_is_unreachable_not_no_answer(tmp_path: Path) -> None:
    reason, line = await _transfer_to_heating(tmp_path, "unreachable", timer_b=0.4)
    assert (reason, line) == ("unreachable", "PJSIP/96069@utility-heating")
    # a line that rang and was not answered stays "noanswer": tests/e2e/test_e2e_transfers.py
