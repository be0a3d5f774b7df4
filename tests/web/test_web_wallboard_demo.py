"""The wallboard of the running demo, in headless Chromium: a call to 12345 shows up without a reload.

The demo lab runs in-process (embedded broker, PBX simulator, the real daemon with its records store and
web server on a free loopback port); the browser opens the URL the demo prints, and a citizen's call
placed at the simulated PBX must change the numbers on the page (pushed over server-sent events).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callbridge.demo.lab import DemoLab

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
AGENTS_12345 = ("PJSIP/agent1001", "PJSIP/agent1002", "PJSIP/agent1003")
CITIZEN = "13700000042"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser test skipped: /usr/bin/chromium is missing "
                       "(apt-get install chromium)"),
]


def exactly(n: int | str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(str(n))}\s*$")


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[DemoLab]:
    lab = DemoLab(tmp_path, ROOT / "dialplans", answer_after=0.3)
    try:
        await asyncio.wait_for(lab.start(), 30)
        yield lab
    finally:
        await asyncio.wait_for(lab.stop(), 30)


async def test_demo_wallboard_shows_a_waiting_call_to_12345_live(lab: DemoLab) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser test skipped: playwright is not installed (pip install playwright)")
    url = lab.wallboard_url
    assert url is not None and url.startswith("http://127.0.0.1:") and f"?token={lab.web_token}" in url
    assert lab.sim is not None
    # every 12345 agent is busy elsewhere, so the citizen's call waits in q-12345
    for agent in AGENTS_12345:
        lab.pause_member("q-12345", agent, True)

    async with asyncio.timeout(90), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
        caller: Any = None
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(10_000)
            await page.goto(url)
            await page.locator("#conn").filter(has_text="实时 Live").wait_for()
            tile = page.locator('[data-hotline="12345"]')

            def shown(field: str) -> Any:
                return tile.locator(f'[data-field="{field}"]')

            await tile.wait_for()
            waiting = int(await shown("waiting").inner_text())
            offered = int(await shown("offered").inner_text())
            abandoned = int(await shown("abandoned").inner_text())
            await page.evaluate("window.__sameDocument = true")  # gone if the page reloads

            caller = lab.sim.place_call(CITIZEN, "12345", "Citizen Li")
            await shown("waiting").filter(has_text=exactly(waiting + 1)).wait_for()
            await shown("offered").filter(has_text=exactly(offered + 1)).wait_for()
            # the wait keeps growing on the page while the caller waits (1 s SSE ticks)
            await shown("longest_wait").filter(has_text=re.compile(r"^[1-9]\d*s$")).wait_for()
            assert "hot" in (await shown("waiting").locator("xpath=..").get_attribute("class") or "")
            assert await page.evaluate("window.__sameDocument") is True
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "wallboard-demo.png"), full_page=True)

            # the citizen gives up: the waiting count goes back and the call counts as abandoned
            lab.sim.caller_hangup(caller)
            caller = None
            await shown("waiting").filter(has_text=exactly(waiting)).wait_for()
            await shown("abandoned").filter(has_text=exactly(abandoned + 1)).wait_for()
            assert await page.evaluate("window.__sameDocument") is True
        finally:
            if caller is not None:
                lab.sim.caller_hangup(caller)
            await browser.close()
    assert (ARTIFACTS / "wallboard-demo.png").stat().st_size > 10_000

    # the records store saw the same call (what the demo's end-of-day KPIs are computed from)
    report = await lab.kpis()
    assert report is not None
    kpi = report.hotlines["12345"]
    assert kpi.offered == offered + 1 and kpi.abandoned == abandoned + 1 and kpi.answered == 0
