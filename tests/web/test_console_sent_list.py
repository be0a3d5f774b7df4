"""The sending desk's "sent" list in headless Chromium: what console.js draws of the other centre's word on
each hand-over — answered at 110 by whom after how long, the caller gave up there, still waiting there, or
failed with its reason — in Chinese and English, beside the feedback.

The page is the real console (console.html, console.js, console.css from the package) signed in as a 12345
desk, its ``/console/me`` and ``/console/stream`` answered by Playwright's routing with the view that
:class:`~callbridge.web.console_state.ConsoleState` builds from the events of four hand-overs (no daemon, no
broker: the full flow over two centres is tests/web/test_console_e2e.py; this is the drawing, lighter on a
loaded machine)."""

from __future__ import annotations

import shutil
from importlib import resources
from typing import Any

import orjson
import pytest

from callbridge.calls.events import CallAnswered, CallOffered
from callbridge.centres.events import HandoverAbandoned, HandoverAnswered, HandoverBound
from callbridge.engine.events import TransferAnswered, TransferRequested, TransferReturned
from callbridge.store.feedback import HandoverFeedback
from callbridge.web.console_state import ConsoleState, Desk

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
BASE = "http://console.test"
T = 1_790_000_000.0
DESK = Desk("agent1001", "12345")

pytestmark = pytest.mark.browser


def sender_view() -> dict[str, Any]:
    """The 12345 desk's view after four hand-overs to the 110 centre (x1 answered there, x2 abandoned there,
    x3 bound and waiting there, x4 returned to the agent: the 110 centre unreachable)."""
    state = ConsoleState("normal")
    for i, xfer in enumerate(("x1", "x2", "x3", "x4")):
        call, at = f"c{i}", T + 100 * i
        common = {"transfer_id": xfer, "from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000",
                  "agent": "agent1001", "category": "police", "ticket": f"GD-{i}"}  # fmt: skip
        state.feed([
            CallOffered(ts=at, call_id=call, hotline="12345", caller_num="13800138000"),
            CallAnswered(ts=at + 1, call_id=call, hotline="12345", agent="PJSIP/agent1001"),
            TransferRequested(ts=at + 10, call_id=call, hotline="12345", mode="blind", **common),
        ])  # fmt: skip
        if xfer == "x4":
            state.feed([TransferReturned(ts=at + 30, call_id=call, hotline="12345", reason="unreachable", **common)])
            continue
        state.feed([
            TransferAnswered(ts=at + 11, call_id=call, hotline="12345", answered_by="PJSIP/centre-110", **common),
            HandoverBound(ts=at + 11, call_id="b" + call, hotline="110", match="header", **common),
        ])  # fmt: skip
        if xfer == "x1":
            state.feed([
                HandoverAnswered(ts=at + 15, call_id="b" + call, hotline="110", answered_agent="agent2101",
                                 wait_s=4.2, **common),
                HandoverFeedback(ts=at + 60, call_id="b" + call, hotline="110", outcome="dispatched",
                                 **{k: common[k] for k in ("transfer_id", "from_hotline", "to_hotline")}),
            ])  # fmt: skip
        elif xfer == "x2":
            state.feed([HandoverAbandoned(ts=at + 30, call_id="b" + call, hotline="110", wait_s=19.0,
                                          reason="abandoned_in_queue", **common)])  # fmt: skip
    return {**state.view(DESK, T + 1000), "destinations": []}


ME = {"agent": "agent1001", "hotline": "12345", "role": "agent", "lang": "zh", "destinations": [], "modes": [],
      "hotlines": {"12345": "12345 市民热线", "110": "110 报警"}, "categories": {"police": "警情"}}  # fmt: skip

WANT = {
    "zh": {"x1": "110 坐席 agent2101 已接听 (等待 4s)", "x2": "来电人在 110 等待 19s 后放弃",
           "x3": "已送达 110, 等待接听", "x4": "转接失败, 已回到本席 (unreachable)"},
    "en": {"x1": "answered at 110 by agent2101 after 4s", "x2": "caller gave up at 110 after 19s",
           "x3": "at 110, waiting for an agent", "x4": "failed, back to the agent (unreachable)"},
}  # fmt: skip


async def serve(route: Any, view: dict[str, Any]) -> None:
    path = route.request.url.removeprefix(BASE)
    static = resources.files("callbridge.web").joinpath("static")
    if path == "/console":
        await route.fulfill(body=static.joinpath("console.html").read_bytes(), content_type="text/html; charset=utf-8")
    elif path.startswith("/console/static/"):
        name = path.removeprefix("/console/static/")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        await route.fulfill(body=static.joinpath(name).read_bytes(), content_type=kind + "; charset=utf-8")
    elif path == "/console/me":
        await route.fulfill(body=orjson.dumps(ME), content_type="application/json")
    elif path == "/console/stream":
        body = b"retry: 60000\n\nevent: view\ndata: " + orjson.dumps(view) + b"\n\n"
        await route.fulfill(body=body, content_type="text/event-stream; charset=utf-8")
    else:
        await route.fulfill(status=404, body=b"")


async def test_the_sent_list_says_what_the_110_centre_made_of_each_hand_over() -> None:
    if CHROMIUM is None:
        pytest.skip("browser test skipped: no chromium binary (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright  # noqa: PLC0415  optional extra, as in the browser test
    except ImportError:
        pytest.skip("browser test skipped: playwright is not installed (pip install playwright)")
    view = sender_view()
    assert [(h["transfer_id"], h["status"]) for h in view["sent"]] == [
        ("x1", "answered"), ("x2", "abandoned"), ("x3", "waiting"), ("x4", "failed")]  # fmt: skip
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(15_000)
            await page.route("**/*", lambda route: serve(route, view))
            await page.goto(BASE + "/console")
            for lang in ("zh", "en"):
                if lang == "en":
                    await page.locator("#lang").click()
                await page.locator('#sent-list li[data-transfer="x4"]').wait_for()
                got = {}
                for xfer in WANT[lang]:
                    item = page.locator(f'#sent-list li[data-transfer="{xfer}"]')
                    got[xfer] = await item.locator('[data-field="status"]').inner_text()
                assert got == WANT[lang], lang
                feedback = page.locator('#sent-list li[data-transfer="x1"] [data-field="feedback"]')
                assert await feedback.inner_text() == ("已派警/派单" if lang == "zh" else "dispatched")
                status = page.locator('#sent-list li[data-transfer="x2"]')
                assert await status.get_attribute("data-status") == "abandoned"
        finally:
            await browser.close()
