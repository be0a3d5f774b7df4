"""Fault injection and remote control, over real TCP: drop, stall, restart, malformed, SimControl."""

from __future__ import annotations

import asyncio

import pytest

from callbridge.sim.simulator import Simulator
from tests.sim.amiclient import TestClient

pytestmark = pytest.mark.timeout(30)


async def test_drop_connections_closes_every_client(sim: Simulator, secret: str, client: TestClient) -> None:
    other = await TestClient.connect(sim.port)
    await other.login("callbridge", secret)
    sim.drop_connections()
    await asyncio.wait_for(client.closed.wait(), 5)
    await asyncio.wait_for(other.closed.wait(), 5)
    again = await TestClient.connect(sim.port)  # the server still accepts new sessions
    assert (await again.login("callbridge", secret)).get("Response") == "Success"
    await again.close()
    await other.close()


async def test_stall_delays_replies_but_not_forever(sim: Simulator, client: TestClient) -> None:
    sim.stall(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = asyncio.create_task(client.send("Ping"))
    await asyncio.sleep(0.1)
    assert not pending.done()
    reply = await asyncio.wait_for(pending, 5)
    assert reply.get("Ping") == "Pong"
    assert loop.time() - started >= 0.25


async def test_malformed_frame_reaches_clients(sim: Simulator, client: TestClient) -> None:
    sim.emit_malformed()
    await client.wait_for(lambda: bool(client.malformed))
    assert client.malformed[0].reason.startswith("line without colon")
    assert (await client.send("Ping")).get("Ping") == "Pong"  # the session survives it


async def test_restart_hangs_up_shuts_down_and_comes_back_empty(sim: Simulator, secret: str,
                                                                client: TestClient) -> None:
    await client.send("Originate", Channel="Local/caller@sim", Context="internal", Exten="2001",
                      CallerID="<13800138000>", Async="true")
    await client.wait_event("BridgeEnter")
    sim.restart(shutdown_delay=0.5, boot_time=25)  # 0.5 s real at time_scale 50
    soft = await client.wait_event("SoftHangupRequest", Cause="4")
    assert soft.get("Channel").startswith("Local/")
    shutdown = await client.wait_event("Shutdown")
    assert (shutdown.get("Shutdown"), shutdown.get("Restart")) == ("Cleanly", "True")
    await asyncio.wait_for(client.closed.wait(), 5)
    fresh = await TestClient.connect(sim.port)
    await fresh.login("callbridge", secret)
    frames = await fresh.send_list("CoreShowChannels")
    assert frames[-1].get("ListItems") == "0"
    assert fresh.named("FullyBooted") == []  # logged in while booting
    booted = await fresh.wait_event("FullyBooted")
    assert int(booted.get("Uptime")) <= 1
    await fresh.close()


async def test_simcontrol_action_injects_faults_and_calls(sim: Simulator, client: TestClient) -> None:
    reply = await client.send("SimControl", Command="trunk-down", Trunk="110")
    assert reply.get("Response") == "Success"
    assert sim.endpoints.get("hotline-110").behaviour.mode == "down"  # type: ignore[union-attr]
    placed = await client.send("SimControl", Command="place-call", Caller="13800138000", DID="4008000300")
    channel = placed.get("Channel")
    join = await client.wait_event("QueueCallerJoin", Channel=channel)
    assert join.get("Queue") == "support"
    bad = await client.send("SimControl", Command="explode")
    assert bad.get("Response") == "Error"
    bad = await client.send("SimControl", Command="agent", Agent="agent9999", Behaviour="busy")
    assert bad.get("Response") == "Error"


async def test_trunk_down_makes_originate_fail_without_channel(sim: Simulator, client: TestClient) -> None:
    sim.set_trunk("12345", "down")
    await client.send("Originate", Channel="PJSIP/12345@hotline-12345", Context="internal", Exten="hold",
                      Async="true", ChannelId="o-1")
    resp = await client.wait_event("OriginateResponse")
    assert (resp.get("Response"), resp.get("Reason"), resp.get("Uniqueid")) == ("Failure", "0", "o-1")
    assert client.named("Newchannel") == []


async def test_sync_originate_waits_for_the_answer(sim: Simulator, client: TestClient) -> None:
    sim.set_agent("agent1002", "answer", answer_after=1.0)
    reply = await client.send("Originate", Channel="PJSIP/agent1002", Context="internal", Exten="hold",
                              CallerID="<13800138000>")
    assert reply.get("Message") == "Originate successfully queued"
    assert client.named("OriginateResponse", Response="Success")
    sim.set_agent("agent1003", "busy")
    reply = await client.send("Originate", Channel="PJSIP/agent1003", Context="internal", Exten="hold")
    assert (reply.get("Response"), reply.get("Message")) == ("Error", "Originate failed")
    assert client.named("OriginateResponse", Response="Failure")[0].get("Reason") == "0"  # as Asterisk 22 (issue 15)
