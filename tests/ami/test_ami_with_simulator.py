"""AmiClient against the PBX simulator's AMI server (a second, independent AMI implementation).

Joining mid-call: a caller already waits in the queue when callbridge connects; the resync reports
it (CoreShowChannel + QueueEntry), and a later hang-up arrives as a live event after ``Resynced``.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from callbridge.ami.actions import CoreStatus, Hangup
from callbridge.ami.client import AmiClient, AmiConnected, ReconnectPolicy, Resynced
from callbridge.ami.event_types import CoreShowChannel, QueueEntry
from callbridge.ami.event_types import Hangup as HangupEvent

sim_module = pytest.importorskip("callbridge.sim.simulator")
server_module = pytest.importorskip("callbridge.sim.server")


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_resync_sees_a_caller_already_waiting_then_live_events(auth: Literal["plain", "md5"]) -> None:
    sim = sim_module.Simulator(users=[server_module.AmiUser("callbridge", "pw")], login_fail_delay=0.05)
    port = await sim.start()
    try:
        joined = asyncio.Event()
        sim.subscribe(lambda event: joined.set() if event[0] == "QueueCallerJoin" else None)
        caller = sim.place_call("13800138000", "4008000300")
        async with asyncio.timeout(5):
            await joined.wait()
        client = AmiClient("127.0.0.1", port, "callbridge", "pw", auth=auth, policy=ReconnectPolicy(initial=0.01))
        async with asyncio.timeout(10), client:
            stream = client.stream().__aiter__()
            assert isinstance(await anext(stream), AmiConnected)
            resynced = await anext(stream)
            assert isinstance(resynced, Resynced)
            channels = [e for e in resynced.events if isinstance(e, CoreShowChannel)]
            assert caller.name in [c.snap.channel for c in channels]
            entries = [e for e in resynced.events if isinstance(e, QueueEntry)]
            assert [(e.queue, e.caller_num) for e in entries] == [("support", "13800138000")]

            assert (await client.send(CoreStatus())).success
            await client.send(Hangup(channel=caller.name, cause=16))
            async for item in stream:
                if isinstance(item, HangupEvent) and item.snap.channel == caller.name:
                    break
    finally:
        await sim.stop()
