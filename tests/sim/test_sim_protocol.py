"""The AMI protocol side over real TCP: banner, login, permissions, event filtering, list framing."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from callbridge.sim.simulator import Simulator
from tests.sim.amiclient import TestClient

pytestmark = pytest.mark.timeout(30)


async def test_banner_and_plain_login(sim: Simulator, secret: str) -> None:
    c = await TestClient.connect(sim.port)
    assert c.banner == "Asterisk Call Manager/11.0.0"
    reply = await c.login("callbridge", secret)
    assert (reply.get("Response"), reply.get("Message")) == ("Success", "Authentication accepted")
    assert reply.get("ActionID") == "t-1"
    booted = await c.wait_event("FullyBooted")
    assert booted.get("Status") == "Fully Booted"
    auth = await c.wait_event("SuccessfulAuth")
    assert auth.get("AccountID") == "callbridge" and auth.get("Privilege") == "security,all"
    await c.close()


async def test_md5_challenge_login(sim: Simulator, secret: str) -> None:
    c = await TestClient.connect(sim.port)
    challenge = (await c.send("Challenge", AuthType="MD5")).get("Challenge")
    assert challenge
    key = hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()
    reply = await c.send("Login", AuthType="MD5", Username="callbridge", Key=key)
    assert reply.get("Message") == "Authentication accepted"
    await c.close()


async def test_failed_login_errors_then_closes(sim: Simulator) -> None:
    c = await TestClient.connect(sim.port)
    reply = await c.login("callbridge", "wrong")
    assert (reply.get("Response"), reply.get("Message")) == ("Error", "Authentication failed")
    await asyncio.wait_for(c.closed.wait(), 5)
    await c.close()


async def test_actions_before_login_are_refused(sim: Simulator) -> None:
    c = await TestClient.connect(sim.port)
    reply = await c.send("CoreShowChannels")
    assert (reply.get("Response"), reply.get("Message")) == ("Error", "Permission denied")
    await c.close()


async def test_unknown_action_gets_asterisks_error(client: TestClient) -> None:
    reply = await client.send("NoSuchAction")
    assert reply.get("Response") == "Error"
    assert reply.get("Message") == (
        "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands.")
    bad = await client.wait_event("RequestBadFormat")
    assert bad.get("RequestType") == "Action: NoSuchAction"


async def test_ping_and_core_settings(client: TestClient) -> None:
    assert (await client.send("Ping")).get("Ping") == "Pong"
    settings = await client.send("CoreSettings")
    assert settings.get("AMIversion") == "11.0.0" and settings.get("AsteriskVersion") == "22.10.1"
    status = await client.send("CoreStatus")
    assert status.get("CoreCurrentCalls") == "0"


async def test_list_framing_like_asterisk(client: TestClient) -> None:
    frames = await client.send_list("CoreShowChannels")
    head, done = frames[0], frames[-1]
    assert [head.get(k) for k in ("Response", "EventList", "Message")] == ["Success", "start", "Channels will follow"]
    assert (done.name, done.get("EventList"), done.get("ListItems")) == ("CoreShowChannelsComplete", "Complete", "0")


async def test_events_reach_every_client_and_respect_masks(sim: Simulator, secret: str, client: TestClient) -> None:
    quiet = await TestClient.connect(sim.port)
    await quiet.login("callbridge", secret)
    assert (await quiet.send("Events", EventMask="off")).get("Events") == "Off"
    system_only = await TestClient.connect(sim.port)
    await system_only.login("monitor", secret)
    reply = await client.send("Originate", Channel="Local/alice@sim", Application="Wait", Data="5",
                              CallerID='"Alice" <13800138000>', Async="true", ChannelId="c-alice")
    assert reply.get("Message") == "Originate successfully queued"
    done = await client.wait_event("OriginateResponse", Response="Success")
    assert done.get("Uniqueid") == "c-alice" and done.get("CallerIDNum") == "13800138000"
    await client.wait_event("Newstate", Channel="Local/alice@sim-00000000;1", ChannelStateDesc="Up")
    await asyncio.sleep(0.05)
    assert quiet.named("Newchannel") == []
    assert system_only.named("Newchannel") == []  # read=system: no call events
    assert system_only.named("FullyBooted")  # but system events
    await quiet.close()
    await system_only.close()


async def test_logoff_says_goodbye_and_closes(client: TestClient) -> None:
    reply = await client.send("Logoff")
    assert (reply.get("Response"), reply.get("Message")) == ("Goodbye", "Thanks for all the fish.")
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_setvar_getvar_global_and_channel(client: TestClient) -> None:
    assert (await client.send("Setvar", Variable="HOTLINE_TIMEOUT", Value="10")).get("Message") == "Variable Set"
    assert (await client.send("Getvar", Variable="HOTLINE_TIMEOUT")).get("Value") == "10"
    reply = await client.send("Getvar", Channel="PJSIP/nobody-00000000", Variable="X")
    assert reply.get("Response") == "Error"


async def test_hangup_regex_lists_channels(client: TestClient) -> None:
    await client.send("Originate", Channel="Local/bob@sim", Application="Wait", Data="30", Async="true")
    await client.wait_event("OriginateResponse")
    frames = await client.send_list("Hangup", Channel="/bob/")
    assert frames[0].get("Message") == "Channels hung up will follow"
    hung = sorted(f.get("Channel") for f in frames if f.name == "ChannelHungup")
    assert hung == ["Local/bob@sim-00000000;1", "Local/bob@sim-00000000;2"]
    assert frames[-1].name == "ChannelsHungupListComplete"
    await client.wait_event("Hangup", Channel="Local/bob@sim-00000000;1")
