"""One truth on every screen: the demo's day, played on the simulator, read four ways at the same moment.

The demo lab runs in-process (embedded broker, PBX simulator, the real daemon with its records store and
web server); the demo's own scenes play their day (fast mode, as ``callbridge demo --fast``). After three
of the scenes and at the end of the day, every hotline's offered / answered / abandoned counts and answer
rate must be the same on the wallboard (``/api/live``, what the page draws), in ``/metrics``, in
``/api/kpi?period=today`` and in ``callbridge report --period today`` over the daemon's records file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from callbridge.cli import main as cli_main
from callbridge.demo.lab import DemoLab
from callbridge.demo.runner import Narrator, end_of_day, play
from callbridge.demo.script import SCENES
from callbridge.demo.stage import Stage
from callbridge.store.kpi import answer_rate
from callbridge.store.periods import iso

ROOT = Path(__file__).resolve().parents[2]
#: after the transfer into 110, after the callers waiting at 119's expert queue hang up, after the overflow
MOMENTS = (0, 2, 4)

pytestmark = [pytest.mark.slow]

Counts = tuple[int, int, int, float | None]  # offered, answered, abandoned, answer rate (rounded)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[DemoLab]:
    lab = DemoLab(tmp_path / "lab", ROOT / "dialplans", answer_after=0.3)
    (tmp_path / "lab").mkdir()
    try:
        await asyncio.wait_for(lab.start(), 30)
        yield lab
    finally:
        await asyncio.wait_for(lab.stop(), 30)


def _counts(offered: float, answered: float, abandoned: float, rate: float | None) -> Counts:
    return int(offered), int(answered), int(abandoned), None if rate is None else round(rate, 4)


def _get(url: str, token: str) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())


async def _fetch(lab: DemoLab, path: str) -> bytes:
    assert lab.app is not None and lab.app.web is not None
    return await asyncio.to_thread(_get, lab.app.web.url + path, lab.web_token)


def _board(live: dict[str, Any]) -> dict[str, Counts]:
    return {t["hotline"]: _counts(t["offered_today"], t["answered_today"], t["abandoned_today"],
                                  t["answer_rate_today"]) for t in live["hotlines"]}  # fmt: skip


def _metrics(text: str) -> dict[str, Counts]:
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "hotline" in sample.labels:
                values[(sample.name, sample.labels["hotline"])] = sample.value
    hotlines = {h for name, h in values if name == "callbridge_calls_offered_today"}
    return {h: _counts(values[("callbridge_calls_offered_today", h)], values[("callbridge_calls_answered_today", h)],
                       values[("callbridge_calls_abandoned_today", h)],
                       values.get(("callbridge_answer_rate_today", h))) for h in hotlines}  # fmt: skip


def _api(kpi: dict[str, Any]) -> dict[str, Counts]:
    return {h: _counts(k["offered"], k["answered"], k["abandoned"], k["answer_rate"])
            for h, k in kpi["hotlines"].items()}  # fmt: skip


def _report(db: Path, out: Path) -> dict[str, Counts]:
    assert cli_main(["report", "--db", str(db), "--period", "today", "--format", "csv", "-o", str(out)]) == 0
    rows = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    return {r["hotline"]: _counts(int(r["offered"]), int(r["answered"]), int(r["abandoned"]),
                                  float(r["answer_rate"]) if r["answer_rate"] else None) for r in rows}  # fmt: skip


def _day() -> object:
    return datetime.now().date()  # the daemon runs on the wall clock, like the demo


async def one_truth(lab: DemoLab, scratch: Path) -> dict[str, dict[str, Counts]]:
    """The four readings of one moment: taken again while an event arrives in between (the board and the
    records must have seen the same events) or midnight passes (they must mean the same "today")."""
    app = lab.app
    assert app is not None and app.board is not None and app.writer is not None
    for _ in range(50):
        version, day = app.board.version, _day()
        await asyncio.wait_for(app.writer.flush(), 10)  # the records hold every event the board has seen
        readings = {
            "board": _board(json.loads(await _fetch(lab, "/api/live"))),
            "metrics": _metrics((await _fetch(lab, "/metrics")).decode()),
            "api": _api(json.loads(await _fetch(lab, "/api/kpi?period=today"))),
            "report": _report(lab.workdir / "records.sqlite3", scratch / "kpi.csv"),
        }
        if app.board.version == version and _day() == day:
            return readings
        await asyncio.sleep(0.2)
    raise AssertionError("events never stopped long enough to read the four screens at one moment")


def assert_one_truth(readings: dict[str, dict[str, Counts]], when: str) -> dict[str, Counts]:
    hotlines = set().union(*readings.values())
    nothing: Counts = (0, 0, 0, None)
    table = {h: {screen: r.get(h, nothing) for screen, r in readings.items()} for h in sorted(hotlines)}
    for hotline, seen in table.items():
        assert len(set(seen.values())) == 1, f"{when}: {hotline} differs between screens: {seen}"
        offered, answered, abandoned, rate = seen["board"]
        expected = answer_rate(answered, abandoned)
        assert rate == (None if expected is None else round(expected, 4)), (when, hotline, seen)
        assert answered + abandoned <= offered, (when, hotline, seen)
    return {h: seen["board"] for h, seen in table.items()}


async def test_board_metrics_api_and_report_agree_through_the_demo_day(lab: DemoLab, tmp_path: Path) -> None:
    stage = Stage(lab, True, lambda english, chinese: None)
    moments = []
    for i, scene in enumerate(SCENES):
        outcome = await play(scene, stage, 45.0)
        assert outcome.ok, f"{scene.title}: {outcome.detail()}"
        if i in MOMENTS:
            moments.append(assert_one_truth(await one_truth(lab, tmp_path), f"after scene {i + 1}"))
    await end_of_day(lab, Narrator(Console(file=io.StringIO()), lab))
    end = assert_one_truth(await one_truth(lab, tmp_path), "at the end of the day")
    assert len(moments) == len(MOMENTS)

    # what the day was, over the whole run (it may have crossed midnight: "today" would then hold only its end)
    assert lab.app is not None and lab.app.records is not None
    run = f"{iso(lab.started_at - 60)}..{iso(time.time() + 60)}"
    kpi = json.loads(await _fetch(lab, "/api/kpi?period=" + urllib.parse.quote(run)))
    day = _api(kpi)
    # a transferred-in call is offered to the receiving hotline and answered there: 110 the calls of scenes 1,
    # 4 and 7, 120 the three-way hand-over of scene 2; every completed transfer into a hotline is one of its
    # answered offers
    assert day["110"][:2] >= (1, 1) and day["120"][:2] >= (1, 1)
    completed_into: dict[str, int] = {}
    for pair in kpi["transfers_by_pair"]:
        completed_into[pair["to"]] = completed_into.get(pair["to"], 0) + pair["outcomes"].get("completed", 0)
    assert completed_into, kpi["transfers_by_pair"]
    for hotline, n in completed_into.items():
        assert day[hotline][1] >= n, (hotline, day[hotline], n)
    # the overflow scene's callers answered at the remote seats are answered, not abandoned: nothing at 12345
    # is lost but the callers who hung up unanswered (the records' call rows say which)
    rows = lab.app.records.search_calls(hotline="12345", limit=1000)
    hung_up_unanswered = {r["call_id"] for r in rows if r["hotline"] == "12345" and r["answered_at"] is None
                          and r["ended_at"] is not None and r["kind"] is None}  # fmt: skip
    assert day["12345"][2] == len(hung_up_unanswered)
    assert sum(end[h][0] for h in end) <= sum(day[h][0] for h in day)  # today is (the end of) this run
