"""``callbridge demo --fast`` as a user runs it: a subprocess, judged by its exit code, its JSON summary
and the events an independent MQTT subscriber (this test) received from a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from callbridge.bus.envelope import decode
from callbridge.demo.script import CALLERS, SCENES
from callbridge.store.kpi import answer_rate
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "callbridge/demo"

pytestmark = [pytest.mark.slow]


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    type: str
    id: str
    seq: int
    data: dict[str, Any]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as b:
        yield b


async def run_demo(*args: str, timeout: float = 90.0, interrupt_after: str | None = None) -> tuple[int, str]:  # noqa: ASYNC109
    """Run the demo to its end; with ``interrupt_after``, press Ctrl-C (SIGINT) once that text is printed
    (what a person does to stop ``--keep-running``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "demo", "--fast", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    out = bytearray()

    async def read_all() -> None:
        assert proc.stdout is not None
        interrupted = False
        while chunk := await proc.stdout.read(4096):
            out.extend(chunk)
            if interrupt_after and not interrupted and interrupt_after.encode() in out:
                interrupted = True
                proc.send_signal(signal.SIGINT)
        await proc.wait()

    try:
        await asyncio.wait_for(read_all(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"demo did not finish within {timeout}s:\n{out.decode(errors='replace')}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def collect(client: aiomqtt.Client, into: list[Delivery]) -> None:
    async for message in client.messages:
        try:
            env = decode(bytes(message.payload))
        except (ValueError, TypeError):
            continue  # the retained status topic ("online"/"offline") is not a CloudEvent
        into.append(Delivery(message.topic.value, str(env["type"]).removeprefix("org.callbridge."), str(env["id"]),
                             int(env["seq"]), env.get("data") or {}))  # fmt: skip


def first(seen: list[Delivery], type_: str, topic_prefix: str = "", **data: Any) -> Delivery | None:
    for d in seen:
        if d.type == type_ and d.topic.startswith(topic_prefix) and all(d.data.get(k) == v for k, v in data.items()):
            return d
    return None


@pytest.mark.mosquitto
async def test_demo_against_mosquitto_matches_the_script(broker: Mosquitto, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    seen: list[Delivery] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="demo-test-watch",
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:  # fmt: skip
        await client.subscribe("callbridge/#", qos=1)
        collector = asyncio.create_task(collect(client, seen))
        try:
            code, out = await run_demo("--broker", f"mqtt://{broker.host}:{broker.port}", "--no-web",
                                       "--json-summary", str(summary_path))  # fmt: skip
            await asyncio.sleep(0.5)  # the last deliveries
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector

    assert code == 0, out
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["ok"] is True
    assert [s["title"] for s in summary["steps"]] == [s.title for s in SCENES]
    assert all(s["ok"] for s in summary["steps"]), [s for s in summary["steps"] if not s["ok"]]
    assert summary["transfers"] >= 5 and summary["number_carrying_verified"] >= 4
    assert summary["number_carrying_mismatch"] == 0 and summary["duplicates"] == 0
    assert 0 < summary["answer_rate"] <= 1
    assert "✔ 1 · 12345 → 110" in out and "✘" not in out
    assert "wallboard" not in out  # --no-web: no web server, no URL; the records are still kept
    assert summary["records"]["transfers_by_pair"]

    ids = {d.id for d in seen}
    assert summary["events_seen"] <= len(ids)  # this subscriber saw at least what the demo's own saw

    # scene 1: the 110 software received the screen pop with the citizen's number, then the answer
    pop = first(seen, "transfer.requested", f"{PREFIX}/events/110/", caller_num=CALLERS["fight"])
    assert pop is not None and pop.data["from_hotline"] == "12345" and pop.data["to_hotline"] == "110"
    answered = first(seen, "transfer.answered", f"{PREFIX}/events/110/", transfer_id=pop.data["transfer_id"])
    assert answered is not None and answered.seq > pop.seq
    assert first(seen, "transfer.number_verified", transfer_id=pop.data["transfer_id"]) is not None
    # scene 2: three-way with 120, the 12345 agent leaves
    started = first(seen, "threeway.started", caller_num=CALLERS["ambulance"])
    assert started is not None
    assert first(seen, "transfer.answered", f"{PREFIX}/events/120/", caller_num=CALLERS["ambulance"])
    assert first(seen, "threeway.agent_left", room=started.data["room"])
    # scene 3: the emergency referral was raised in 119's expert queue
    assert first(seen, "queue.priority_set", queue="q-119-expert", priority=10)
    # scene 4: the backup line carried the transfer to 110
    backup = first(seen, "transfer.backup_line", caller_num=CALLERS["fight_backup"])
    assert backup is not None and backup.data["failed_line"] == "PJSIP/110@hotline-110"
    assert first(seen, "transfer.answered", f"{PREFIX}/events/110/", caller_num=CALLERS["fight_backup"])
    # scene 5: overflow started and ended on 12345's queue
    of_start = first(seen, "queue.overflow_started", f"{PREFIX}/events/12345/", queue="q-12345")
    of_end = first(seen, "queue.overflow_ended", f"{PREFIX}/events/12345/", queue="q-12345")
    assert of_start is not None and of_end is not None and of_end.seq > of_start.seq
    # scene 6: 110 was told about the nuisance caller
    flagged = first(seen, "nuisance.flagged", f"{PREFIX}/events/110/", caller_num=CALLERS["nuisance"])
    assert flagged is not None and flagged.data["count"] == 5
    # scene 7: the bad edit was rejected, a call still transferred, the fixed plan reloaded
    rejected = first(seen, "dialplan.rejected")
    assert rejected is not None and any("999" in p for p in rejected.data["problems"])
    after = first(seen, "transfer.answered", f"{PREFIX}/events/110/", caller_num=CALLERS["after_bad_edit"])
    assert after is not None and after.seq > rejected.seq
    assert first(seen, "dialplan.reloaded") is not None


async def test_demo_with_the_embedded_broker_keeps_running_until_ctrl_c(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    code, out = await run_demo("--json-summary", str(summary_path), "--keep-running", interrupt_after="Still running")
    assert code == 0, out  # Ctrl-C after a successful day is a clean exit
    assert "Still running" in out and out.index("records KPIs 记录指标") < out.index("Still running")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["ok"] and len(summary["steps"]) == len(SCENES)
    assert "MQTT 3.1.1, embedded" in out
    assert summary["events_seen"] > 50 and summary["transfers"] >= 5

    # the wallboard URL is printed with this run's token; the token is in no file the demo writes
    shown = re.search(r"wallboard 大屏: (http://127\.0\.0\.1:\d+/\?token=([\w-]+))", out)
    assert shown is not None, out
    assert len(shown.group(2)) >= 16 and shown.group(2) not in summary_path.read_text(encoding="utf-8")

    # the KPIs of the daemon's records store agree with what the subscriber saw, and with the script
    records = summary["records"]
    assert (records["offered"], records["answered"], records["abandoned"]) == (
        summary["calls_offered"], summary["calls_answered"], summary["calls_abandoned"])  # fmt: skip
    assert records["abandoned"] >= 3  # scene 3's two waiting callers hang up, scene 5's third surge caller
    # the day ended with nobody on the line: no call in progress anywhere; 120 was offered the citizen's call
    # once, by scene 2's transfer (answered there), and the line callbridge called into the three-way room is
    # that transfer's leg, not a second call offered to 120; 110 answered the calls of scenes 1, 4 and 7
    assert summary["calls_in_progress"] == 0 and records["in_progress"] == 0 and "still up" not in out
    ambulance, police = records["hotlines"]["120"], records["hotlines"]["110"]
    assert (ambulance["offered"], ambulance["answered"], ambulance["in_progress"]) == (1, 1, 0)
    assert (police["offered"], police["answered"], police["abandoned"]) == (3, 3, 0)
    # one answer-rate definition everywhere: each hotline's, the day's total and the MQTT summary's
    hotlines = records["hotlines"].values()
    for k in hotlines:
        expected = answer_rate(k["answered"], k["abandoned"])
        assert k["answer_rate"] == (None if expected is None else round(expected, 3))
    total = answer_rate(sum(k["answered"] for k in hotlines), sum(k["abandoned"] for k in hotlines))
    assert total is not None and records["answer_rate"] == round(total, 3) == summary["answer_rate"]
    # the day ended before the table: every caller hung up, so every transfer has its final outcome
    pairs = {(p["from"], p["to"]): p["outcomes"] for p in records["transfers_by_pair"]}
    assert pairs == {("12345", "110"): {"completed": 3}, ("12345", "119"): {"completed": 1},
                     ("12345", "120"): {"completed": 1}}  # scenes 1, 4, 7 · 3 · 2  # fmt: skip
    assert "completed 3" in out and "in progress 进行中)" not in out
    citizen = records["hotlines"]["12345"]
    assert citizen["transfers_out"] == summary["transfers"] == 5
    assert citizen["number_verified"] == 1.0 and citizen["backup_line_uses"] == 1 and citizen["nuisance_callers"] == 1
    assert "records KPIs 记录指标" in out and "12345 → 110" in out


async def test_a_scene_that_does_not_happen_fails_the_demo(tmp_path: Path) -> None:
    # a city that never notifies 110 about nuisance callers: scene 6 cannot happen
    dialplans = tmp_path / "dialplans"
    shutil.copytree(ROOT / "dialplans", dialplans)
    city = dialplans / "00-city.yaml"
    text = city.read_text(encoding="utf-8")
    assert "    - notify_110" in text
    city.write_text(text.replace("    - notify_110", ""), encoding="utf-8")
    summary_path = tmp_path / "summary.json"
    code, out = await run_demo("--dialplans", str(dialplans), "--json-summary", str(summary_path))
    assert code == 1, out
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    failed = [s["title"] for s in summary["steps"] if not s["ok"]]
    assert failed == [SCENES[5].title], summary["steps"]
    assert "✘ 110 notified" in out
