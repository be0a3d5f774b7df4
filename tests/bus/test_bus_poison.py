"""No single row can block the outbox: poison rows become dead letters, good rows behind them are delivered,
an alarm is published, the CLI lists / retries / drops them, and readiness sees a stalled delivery."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from bus_helpers import Ping, running, settings_for, subscribed

from callbridge.bus.deadletters import DeadLetterStore
from callbridge.bus.delivery import DeliveryGuard
from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.publisher import Publisher
from callbridge.cli import main as cli_main
from callbridge.testing.mosquitto import Mosquitto

pytestmark = pytest.mark.mosquitto

GOOD = [OutgoingMessage(f"callbridge/lab/events/110/test/good{i}", b'{"n":%d}' % i) for i in range(5)]


def outbox_with(path: Path, *poison: OutgoingMessage) -> None:
    """An outbox file whose first rows are ``poison``, then the good rows (what a restart finds)."""
    with Outbox(path) as box:
        box.append([*poison, *GOOD])


@pytest.mark.parametrize(
    "topic", ["callbridge/lab/calls/1700\x85.1", "callbridge/lab/events/\ufdd0/x", "callbridge/lab/calls/\uffff"]
)
async def test_a_row_no_broker_accepts_becomes_a_dead_letter_and_the_rows_behind_it_go_out(
    broker: Mosquitto, tmp_path: Path, topic: str
) -> None:
    settings = settings_for(broker, tmp_path)
    outbox_with(settings.outbox_path, OutgoingMessage(topic, b"poison"))
    async with subscribed(broker, "callbridge/lab/#") as (_, seen), running(Publisher(settings)) as pub:
        await seen.wait_until(lambda c: sum("/good" in t for t, _, _ in c.messages) == 5)
        await seen.wait_until(lambda c: any(t.endswith("outbox/dead_letter") for t, _, _ in c.messages))
        async with asyncio.timeout(10):
            await pub.wait_drained()
        [letter] = DeadLetterStore(settings.outbox_path).letters()
        assert letter.topic == topic and letter.payload == b"poison" and "0x90" in letter.reason
        assert pub.connections == 1  # it never reached the broker: no dropped connection at all
    [alarm] = [env for t, env in seen.envelopes() if t.endswith("outbox/dead_letter")]
    assert alarm["data"]["seq"] == letter.seq and alarm["data"]["topic"] == ascii(topic)[1:-1]
    assert [t for t, _, _ in seen.messages if "/good" in t] == [m.topic for m in GOOD]  # order kept


async def test_a_row_the_broker_drops_the_connection_for_is_isolated_then_dead_lettered(tmp_path: Path) -> None:
    # mosquitto disconnects a client whose packet exceeds max_packet_size (MQTT 3.1.1 has no way to say so
    # beforehand): the same row would be at the head after every reconnect, for ever
    with Mosquitto(tmp_path / "small", extra_config="max_packet_size 2000") as broker:
        settings = settings_for(broker, tmp_path, protocol="3.1.1", dead_letter_strikes=3)
        big = OutgoingMessage("callbridge/lab/events/110/test/big", b"x" * 5000)
        outbox_with(settings.outbox_path, big)
        async with subscribed(broker, "callbridge/lab/#", v5=False) as (_, seen), running(Publisher(settings)) as pub:
            await seen.wait_until(lambda c: sum("/good" in t for t, _, _ in c.messages) == 5, within=20)
            async with asyncio.timeout(10):
                await pub.wait_drained()
            assert pub.connections == 4  # 3 drops with the big row the oldest in flight, then delivery
            assert pub.delivery.suspect is None and pub.outbox.dead_letters == 1
        [letter] = DeadLetterStore(settings.outbox_path).letters()
        assert letter.topic == big.topic and "dropped the connection 3 times" in letter.reason
        assert not any(t.endswith("/big") for t, _, _ in seen.messages)
        assert [t for t, _, _ in seen.messages if "/good" in t] == [m.topic for m in GOOD]


async def test_an_innocent_row_at_the_head_of_a_dropped_connection_is_not_dead_lettered(
    broker: Mosquitto, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, dead_letter_strikes=2)
    async with subscribed(broker, "callbridge/lab/events/#") as (_, seen), running(Publisher(settings)) as pub:
        pub.delivery.connection_dropped([10**9], "a network cut")  # a suspect that is not in the outbox
        await pub.publish_events([Ping(ts=time.time(), hotline="110", n=n) for n in range(3)])
        await seen.wait_until(lambda c: len(c.messages) == 3)
        assert pub.outbox.dead_letters == 0 and not pub.delivery.isolating  # back to full width
    # and an innocent head in flight at one drop only: one strike, then acknowledged, suspect cleared
    box = Outbox(tmp_path / "o.db")
    guard = DeliveryGuard(box, lambda e: None, strikes=2)
    box.append(GOOD)
    first = box.pending(limit=1)[0].seq
    assert guard.connection_dropped([first, first + 1], "cut") is None and guard.isolating
    guard.acknowledged([first])
    assert not guard.isolating and box.dead_letters == 0
    box.close()


def test_the_deadletters_cli_lists_retries_and_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append([OutgoingMessage("t/a\x85", b"1"), OutgoingMessage("t/b", b"2"), OutgoingMessage("t/c", b"3")])
        seqs = [r.seq for r in box.pending()]
        for seq in seqs:
            box.dead_letter(seq, "test", 1.0)
        assert box.depth == 0 and box.dead_letters == 3
    assert cli_main(["deadletters", "--outbox", str(path), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["topic"] for d in listed] == ["t/a\\x85", "t/b", "t/c"] and listed[0]["reason"] == "test"
    ids = [d["id"] for d in listed]
    assert cli_main(["deadletters", "--outbox", str(path), "drop", str(ids[0])]) == 0
    assert cli_main(["deadletters", "--outbox", str(path), "retry", str(ids[1])]) == 0
    assert cli_main(["deadletters", "--outbox", str(path), "drop", "99999"]) == 1  # nothing by that id
    capsys.readouterr()
    with Outbox(path) as box:  # what the daemon's publisher does (at start and every few seconds)
        assert box.requeue_retried() == 1
        assert [(r.topic, r.payload) for r in box.pending()] == [("t/b", b"2")] and box.dead_letters == 1
    assert cli_main(["deadletters", "--outbox", str(path), "list"]) == 0
    out = capsys.readouterr().out
    assert "t/c" in out and "t/b" not in out


async def test_a_retried_dead_letter_is_published_by_the_running_daemon(broker: Mosquitto, tmp_path: Path) -> None:
    settings = settings_for(broker, tmp_path)
    async with subscribed(broker, "callbridge/lab/events/#") as (_, seen), running(Publisher(settings)) as pub:
        await pub.publish_events([Ping(ts=time.time(), hotline="110", n=1)])
        await seen.wait_until(lambda c: len(c.messages) == 1)
        # an operator set a good message aside earlier (e.g. the ACL was fixed since): retry it
        pub.outbox.append([OutgoingMessage("callbridge/lab/events/110/test/late", b"{}")])
        pub.delivery.dead_letter(pub.outbox.pending()[-1].seq, "ACL said no")
        await asyncio.sleep(0.05)  # the alarm's commit (end of the loop iteration): the CLI is another process
        with DeadLetterStore(settings.outbox_path) as store:
            assert store.mark_retry() == 1
        await seen.wait_until(lambda c: any(t.endswith("/late") for t, _, _ in c.messages), within=10)


async def test_readiness_turns_false_while_delivery_is_stalled_and_back_when_it_moves(
    broker: Mosquitto, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, delivery_stall_s=0.3)
    async with subscribed(broker, "callbridge/lab/events/#"), running(Publisher(settings)) as pub:
        assert pub.delivery_state()["stalled"] is False
        broker.stop()
        await pub.publish_events([Ping(ts=time.time(), hotline="110", n=1)])
        assert pub.delivery_state()["stalled"] is False  # rows waiting, but not for long yet
        await asyncio.sleep(0.5)
        state = pub.delivery_state()
        assert state["stalled"] is True and state["outbox_depth"] >= 1 and state["stalled_s"] >= 0.3
        broker.start()
        async with asyncio.timeout(15):
            await pub.wait_drained()
        assert pub.delivery_state()["stalled"] is False
