"""``AmiClient.write_now``: the action's bytes are on the wire before the caller yields (issue 19.4).

The PBX simulator runs in a thread with its own event loop, so it reads its socket while the test's loop
is blocked: after ``write_now`` (or the engine service's decision) the test blocks its loop on a
``threading.Event`` the simulator sets when the action reaches its handler. An action still waiting
for a task or a loop turn could not arrive there, and the wait would time out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from callbridge.ami.actions import Setvar
from callbridge.ami.client import AmiClient, ReconnectPolicy
from callbridge.runtime.engine_service import EngineService
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from tests.engine.pbx import Pbx

WAIT = 5.0


class SimThread:
    """A simulator on its own loop in a thread; ``arrived`` is set when a Setvar reaches its handler."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim", daemon=True)
        self.arrived = threading.Event()
        self.received: list[tuple[str, str]] = []  # (variable, ActionID), in the simulator's thread
        self.sim: Simulator | None = None

    def start(self) -> int:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT)

    async def _start(self) -> int:
        self.sim = Simulator(users=[AmiUser("callbridge", "pw")])
        setvar = self.sim.handlers["setvar"]

        def recorded(sim: Any, msg: Any) -> Any:
            self.received.append((msg.get("Variable"), msg.get("ActionID")))
            self.arrived.set()
            return setvar(sim, msg)

        self.sim.handlers["setvar"] = recorded
        return await self.sim.start()

    def stop(self) -> None:
        if self.sim is not None:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture
def sim_thread() -> Iterator[SimThread]:
    sim = SimThread()
    try:
        yield sim
    finally:
        sim.stop()


async def connected(port: int) -> AmiClient:
    client = AmiClient("127.0.0.1", port, "callbridge", "pw", policy=ReconnectPolicy(initial=0.01))
    client.start()
    await client.wait_connected(WAIT)
    return client


async def test_write_now_puts_the_bytes_on_the_wire_before_the_caller_yields(sim_thread: SimThread) -> None:
    client = await connected(sim_thread.start())
    try:
        written = client.write_now(Setvar(variable="CB_PROBE", value="1"))
        # this loop is blocked from here on: only the simulator's thread runs
        assert sim_thread.arrived.wait(WAIT), "the Setvar was not on the wire when write_now returned"
        assert sim_thread.received == [("CB_PROBE", written.action_id)]
        response = await written
        assert response.success and response.action_id == written.action_id
    finally:
        await client.close()


async def test_send_is_write_now_then_the_reply(sim_thread: SimThread) -> None:
    client = await connected(sim_thread.start())
    try:
        response = await client.send(Setvar(variable="CB_SENT", value="2"))
        assert response.success and sim_thread.received == [("CB_SENT", response.action_id)]
    finally:
        await client.close()


async def test_the_one_key_decision_writes_its_first_action_before_the_service_yields(
    sim_thread: SimThread,
) -> None:
    # the real interpreter over a real TCP AMI session: the engine decides *1 (blind to 110), and
    # run_effects returns with the batch's first Setvar already read by the simulator
    client = await connected(sim_thread.start())
    pbx = Pbx()
    agent = pbx.answer_by(pbx.call())
    pbx.take()
    svc = EngineService(pbx.engine, pbx.tracker, client, [], clock=lambda: pbx.now)
    try:
        pbx.press(agent, "*1")
        pbx.engine.effects.extend(pbx.take())
        svc.run_effects()
        assert sim_thread.arrived.wait(WAIT), "the transfer's first action was not written in the decision's step"
        variable, _ = sim_thread.received[0]
        assert variable.startswith("__CB_")  # the hand-over variables come first, before the Redirect
        async with asyncio.timeout(WAIT):
            await svc.idle()
    finally:
        svc.close()
        await client.close()
