"""What the live Asterisk 22 showed (tests/live), held on the simulator with a real ``App`` over TCP AMI.

A trunk that never answers the INVITE at all (SIP timer B: 408, Hangup cause 18) ends ``Dial`` with
DIALSTATUS ``NOANSWER``, the same word as a trunk that rang until the timeout. The live run of 12345 →
96069 (utility-heating, nothing listening) was reported ``noanswer``; a leg that never rang is unreachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from callbridge.ami.client import AmiClient, AmiConnected, ReconnectPolicy
from callbridge.ami.client_policy import ConnState
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
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


async def test_a_login_refused_while_asterisk_restarts_is_retried_at_once_not_as_bad_credentials() -> None:
    """Between ``core restart now`` and its Shutdown event Asterisk answers every action, Login included,
    "Asterisk is shutting down" (live PBX). callbridge took that for refused credentials and waited the
    login pause (a minute); it is a connection that failed: the normal backoff, then the rebooted PBX."""
    sim = Simulator(users=[AmiUser("callbridge", "pw")], login_fail_delay=0.05)
    port = await sim.start()
    try:
        policy = ReconnectPolicy(initial=0.05, maximum=0.2, login_retry=60.0)
        client = AmiClient("127.0.0.1", port, "callbridge", "pw", auth="md5", policy=policy,
                           ping_interval=0.2, ping_timeout=0.5)  # fmt: skip
        async with asyncio.timeout(30), client:
            stream = client.stream().__aiter__()
            assert isinstance(await anext(stream), AmiConnected)
            sim.restart(shutdown_delay=1.5, boot_time=0.3)  # the ping and any new Login meet "shutting down"
            async for item in stream:
                if isinstance(item, AmiConnected):
                    break  # logged in again to the rebooted PBX, well within the minute's login pause
            assert policy.state is not ConnState.LOGIN_FAILED
    finally:
        await sim.stop()
