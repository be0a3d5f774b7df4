"""The wallboard in headless Chromium: it draws the board and its numbers change when a call arrives."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from web_helpers import TOKEN, Served

from callbridge.store.projection import EventRecord

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.browser


async def test_wallboard_updates_live_when_a_call_arrives(served: Served) -> None:
    if CHROMIUM is None:
        pytest.skip("browser test skipped: no chromium binary (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser test skipped: playwright is not installed (pip install playwright)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(10_000)
            await page.goto(f"{served.base}/?token={TOKEN}")
            tile = page.locator('[data-hotline="110"]')
            await tile.locator('[data-field="waiting"]').filter(has_text="0").wait_for()
            # p1..p5 and the call transferred in from 12345 (X1, answered at 110): 4 of 6
            assert await tile.locator('[data-field="offered"]').inner_text() == "6"
            assert await tile.locator('[data-field="answer_rate"]').inner_text() == "66.7%"
            assert "low" in (await tile.get_attribute("class") or "")  # under the 80 % line
            assert await page.locator("#conn").inner_text() == "实时 Live"

            # a call arrives at 110 and waits; a transfer 12345 → 110 starts: no reload, the page follows
            now = served.now
            served.board.feed(EventRecord("call.offered", now - 42, "new-1", "110", {"caller_num": "13511112222"}))
            served.board.feed(EventRecord("queue.joined", now - 42, "new-1", "110", {"queue": "q-110"}))
            x5 = {"transfer_id": "X5", "from_hotline": "12345", "to_hotline": "110"}
            served.board.feed(EventRecord("transfer.requested", now - 5, "c11", "12345", x5))
            served.server.notify()
            await tile.locator('[data-field="waiting"]').filter(has_text="1").wait_for()
            assert await tile.locator('[data-field="offered"]').inner_text() == "7"
            assert await tile.locator('[data-field="longest_wait"]').inner_text() == "42s"
            # a caller still waiting is not a lost call: the rate stays 4 of 6 finished
            assert await tile.locator('[data-field="answer_rate"]').inner_text() == "66.7%"
            assert await page.locator('[data-flow="12345>110"]').count() == 1

            # the caller is answered: waiting goes back to 0 and the answered count moves
            served.board.feed(EventRecord("call.answered", now, "new-1", "110", {"agent": "p2"}))
            served.server.notify()
            await tile.locator('[data-field="waiting"]').filter(has_text="0").wait_for()
            assert await tile.locator('[data-field="answered"]').inner_text() == "5"
            assert await tile.locator('[data-field="answer_rate"]').inner_text() == "71.4%"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "wallboard.png"), full_page=True)
        finally:
            await browser.close()
    assert (ARTIFACTS / "wallboard.png").stat().st_size > 10_000
