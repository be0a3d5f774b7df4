"""``callbridge demo --fast`` as a user runs it: a subprocess, judged by its exit code, its JSON summary
and the events an independent MQTT subscriber (this test) received from a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


async def run_demo(*args: str, timeout: float = 90.0, interrupt_after: str | None = None,  # noqa: ASYNC109
                   env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the demo to its end (stdout and stderr to a pipe, as in CI or ``| tee``); with ``interrupt_after``,
    press Ctrl-C (SIGINT) once that text is printed (what a person does to stop ``--keep-running``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", **(env or {})}
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
    db = tmp_path / "kept" / "demo.sqlite3"
    began = datetime.now(UTC) - timedelta(minutes=1)
    seen: list[Delivery] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="demo-test-watch",
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:  # fmt: skip
        await client.subscribe("callbridge/#", qos=1)
        collector = asyncio.create_task(collect(client, seen))
        try:
            code, out = await run_demo("--broker", f"mqtt://{broker.host}:{broker.port}", "--no-web",
                                       "--json-summary", str(summary_path), "--verbose", "--db", str(db),
                                       env={"XDG_STATE_HOME": str(tmp_path / "state")})  # fmt: skip
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

    scenes_delivered(seen, out)
    # --verbose shows the PBX side: channels, variables
    assert "PJSIP/hotline-110-" in out and "CB_CALLER_NUM=" in out

    # the records stay where --db said (printed), and the records/report commands read the demo's day there
    assert f"records 记录: {db}" in out and summary["records_path"] == str(db) and db.is_file()
    assert not (tmp_path / "state").exists()  # --db given: nothing at the default place
    await records_and_report_read(db, summary, began)


def scenes_delivered(seen: list[Delivery], out: str) -> None:
    """What each scene of the script published, as the independent subscriber received it."""
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
    # scene 8: both 110 lines down, the citizen went back to the sending agent
    returned = first(seen, "transfer.returned", caller_num=CALLERS["rescue"])
    assert returned is not None and returned.data["to_hotline"] == "110"
    assert "✔ back to the sending agent" in out and "✔ the citizen talks with the same agent again" in out


async def records_and_report_read(db: Path, summary: dict[str, Any], began: datetime) -> None:
    """``callbridge records`` finds the rescued citizen and ``report`` the demo's counts in the kept records."""
    records = json.loads(await cli("records", "--db", str(db), "--number", CALLERS["rescue"]))
    assert [r["caller_num"] for r in records] == [CALLERS["rescue"]] and records[0]["transfers"] == 1
    period = f"{began.isoformat()}..{(datetime.now(UTC) + timedelta(minutes=1)).isoformat()}"
    report = await cli("report", "--db", str(db), "--period", period, "--format", "csv")
    rows = {row["hotline"]: row for row in csv.DictReader(io.StringIO(report))}
    for hotline, k in summary["records"]["hotlines"].items():
        assert (rows[hotline]["offered"], rows[hotline]["answered"]) == (str(k["offered"]), str(k["answered"]))


async def cli(*args: str) -> str:
    """``callbridge <args>`` as a user types it; its standard output (exit 0 required)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "callbridge", *args, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_demo_with_the_embedded_broker_keeps_running_until_ctrl_c(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    state = tmp_path / "state"
    # COLUMNS=80: what rich assumes for a pipe; sentences must not be cut there (nor channel names shown)
    code, out = await run_demo("--json-summary", str(summary_path), "--keep-running", interrupt_after="Still running",
                               env={"XDG_STATE_HOME": str(state), "COLUMNS": "80"})  # fmt: skip
    assert code == 0, out  # Ctrl-C after a successful day is a clean exit
    assert "Still running" in out and out.index("records KPIs 记录指标") < out.index("Still running")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["ok"] and len(summary["steps"]) == len(SCENES)
    assert "MQTT 3.1.1, embedded" in out
    assert summary["events_seen"] > 50 and summary["transfers"] >= 6

    # the narration speaks to an operator: no channel, variable or uniqueid without --verbose …
    for internal in ("PJSIP/", "Local/", "CB_", "DTMF", "ConnectedLineNum"):
        assert internal not in out, internal
    assert not re.search(r"\b1\d{9}\.\d+\b", out)  # an Asterisk uniqueid / linkedid
    # … in sentences a pipe gets whole, one per line, never cut at 80 columns
    surge = ("Evening surge: a burst pipe floods a district and 12345's agents cannot keep up. The supervisor "
             "switches to surge mode (MQTT command): the excess goes to the neighbour region's remote seats.")
    storm = ("A storm takes down both 110 lines, the primary and the backup. A citizen reports a break-in and the "
             "agent presses *1: no 110 line answers, so the citizen comes back to the same 12345 agent instead of "
             "being dropped.")
    for scene_text in (surge, storm):
        assert f"\n  {scene_text}\n" in out
    assert re.search(r"\ncallbridge demo — daemon \+ PBX simulator \(AMI 127\.0\.0\.1:\d+\) \+ MQTT "
                     r"127\.0\.0\.1:\d+ \(MQTT 3\.1\.1, embedded\)\n", "\n" + out)
    # the rescue back to the sending agent is one of the scenes
    assert "▶ 8 · both 110 lines down → back to the sending agent" in out and "✔ back to the sending agent" in out
    # the records stay at the default place, printed, for `callbridge records` / `report` afterwards
    kept = state / "callbridge" / "demo-records.sqlite3"
    assert f"records 记录: {kept}" in out and kept.is_file() and f"callbridge report --db {kept}" in out

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
    assert pairs == {("12345", "110"): {"completed": 3, "returned": 1}, ("12345", "119"): {"completed": 1},
                     ("12345", "120"): {"completed": 1}}  # scenes 1, 4, 7, 8 · 3 · 2  # fmt: skip
    assert "completed 3" in out and "in progress 进行中)" not in out
    citizen = records["hotlines"]["12345"]
    assert citizen["transfers_out"] == summary["transfers"] == 6
    assert citizen["number_verified"] == 1.0 and citizen["nuisance_callers"] == 1
    assert citizen["backup_line_uses"] == 2  # scene 4 (answered there) and scene 8 (no answer there either)
    assert "records KPIs 记录指标" in out and "12345 → 110" in out
    # no hotline ends the day below its target (let alone at 0 %) without a word on why; 119's two waiting
    # fire reports hung up in scene 3 (they count as abandoned), and the scene says so
    below = [h for h, k in records["hotlines"].items()
             if k["answer_rate"] is not None and k["answer_rate"] < (k["target"] or 0)]  # fmt: skip
    assert "119" in below
    for hotline in below:
        said = [n for n in summary["rate_notes"] if n.startswith(f"{hotline} at ")]
        assert said and f"\n  {said[0]}\n" in out, (hotline, summary["rate_notes"])
    assert "fire reports waiting for the expert seat hung up" in summary["rate_notes"][below.index("119")]


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
