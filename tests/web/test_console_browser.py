"""The agent console in headless Chromium (Debian's, driven by Playwright) against the simulator, a real
mosquitto and the daemon: a 12345 agent presses the 110 key with a ticket, the 110 console pops before its
phone is answered with that ticket, "dispatched" comes back to the 12345 console, a supervisor raises a
waiting caller's priority and switches the mode. Each console at 1366×768; screenshots into test-artifacts/
(``CB_CONSOLE_SHOTS=docs`` writes the ones docs/console.md shows)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from console_lab import ConsoleLab, DeskKey, answered_call, console_lab

from tests.e2e.conftest import CALLER

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
VIEWPORT = {"width": 1366, "height": 768}
TICKET = "JJ-2026-0042"
WAITING = "13911112222"

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]


def shots_dir() -> Path:
    target = ROOT / ("docs" if os.environ.get("CB_CONSOLE_SHOTS") == "docs" else "test-artifacts")
    target.mkdir(exist_ok=True)
    return target


class Consoles:
    """One browser per desk (each a fresh --user-data-dir: no cookie or storage shared between desks)."""

    def __init__(self, pw: Any, tmp_path: Path) -> None:
        self.pw = pw
        self.tmp_path = tmp_path
        self.contexts: list[Any] = []

    async def open(self, base: str, desk: DeskKey, agent: str, lang: str) -> Any:
        profile = self.tmp_path / f"profile-{len(self.contexts)}"
        ctx = await self.pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, viewport=VIEWPORT, timeout=30_000)  # fmt: skip
        self.contexts.append(ctx)
        page = ctx.pages[0] if ctx.pages else await ctx.new_page()
        page.set_default_timeout(15_000)
        await page.add_init_script(f"localStorage.setItem('cb-lang', '{lang}')")
        await page.goto(base + "/console")
        form = page.locator("#login")
        await form.wait_for()
        for name, value in (("key", desk.key), ("secret", desk.secret), ("agent", agent), ("hotline", desk.hotline)):
            await form.locator(f'[name="{name}"]').fill(value)
        await form.locator('[name="role"]').select_option(desk.role)
        await form.locator('button[type="submit"]').click()
        await page.locator("#conn.up").wait_for()
        return page

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[tuple[ConsoleLab, Consoles]]:
    if CHROMIUM is None:
        pytest.skip("browser test skipped: no chromium binary (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser test skipped: playwright is not installed (pip install playwright)")
    async with console_lab(tmp_path) as cl, async_playwright() as pw:
        opened = Consoles(pw, tmp_path)
        try:
            yield cl, opened
        finally:
            await opened.close()


async def fits(page: Any) -> None:
    """Usable at 1366×768: no sideways scrolling, and the call, the pops and the keys are on the first screen."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"page is {width}px wide"
    for selector in ("#pops", "[data-testid=call]", "#destinations"):
        box = await page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], (selector, box)


def arrival(cl: ConsoleLab, type_: str, **match: Any) -> float:
    """When the first ``type_`` event matching ``match`` came out of the daemon (wall clock)."""
    for at, e in cl.arrivals:
        if e.TYPE == type_ and all(getattr(e, k, None) == v for k, v in match.items()):  # noqa: SIM300  # TYPE is data
            return at
    raise AssertionError(f"no {type_} {match}")


async def test_two_consoles_hand_over_pop_first_feedback_and_a_supervisor(
    consoles: tuple[ConsoleLab, Consoles],
) -> None:
    cl, browsers = consoles
    p110 = await browsers.open(cl.base, cl.desks["110"], "agent2101", "en")
    agent = await answered_call(cl, "12345", CALLER, "张三")
    p12345 = await browsers.open(cl.base, cl.desks["12345"], agent, "zh")

    # the 12345 console: the call, one button per destination the dialplan allows, Chinese labels
    card = p12345.locator("#call-card")
    await card.locator('[data-field="caller_num"]').filter(has_text=CALLER).wait_for()
    assert await card.locator('[data-field="caller_name"]').inner_text() == "张三"
    assert await p12345.locator("[data-testid=call] h2").inner_text() == "当前通话"
    buttons = p12345.locator("#destinations button")
    rules = [r.to_hotline for r in cl.app.plan.rules_from("12345", cl.app.engine.mode)]
    assert [await b.get_attribute("data-to") for b in await buttons.all()] == rules
    assert await p12345.locator('#destinations button[data-to="110"]').get_attribute("data-shortcut") == "1"
    await fits(p12345)

    # the hand-over form goes with the transfer; the one key (1) presses the 110 button
    await p12345.locator('#handover [name="category"]').select_option("police")
    await p12345.locator('#handover [name="ticket"]').fill(TICKET)
    await p12345.locator('#handover [name="summary"]').fill("邻居家有打斗声 / sounds of a fight next door")
    await p12345.locator("body").click(position={"x": 5, "y": 5})  # out of the form: keys go to the console
    await p12345.keyboard.press("1")

    pop = p110.locator("#pop-list li.pop")
    await pop.wait_for()
    xfer = await pop.get_attribute("data-transfer")
    assert TICKET in await pop.locator('[data-field="ticket"]').inner_text()
    assert "12345" in await pop.inner_text() and agent in await pop.inner_text()
    reason = await pop.locator('[data-field="reason"]').inner_text()
    assert cl.app.plan.categories["police"] in reason and "sounds of a fight" in reason
    await fits(p110)
    await p110.screenshot(path=str(shots_dir() / "console-110-pop.png"))

    banner = p110.locator("#received-banner")
    await banner.filter(has_text="received from 12345").wait_for()
    assert TICKET in await banner.inner_text()
    shown = await p110.evaluate("[window.cbPopShown, window.cbBannerShown]")
    # screen pop first: drawn before the 110 phone was answered (and before its banner)
    assert shown[0][xfer] / 1000 < arrival(cl, "call.answered", agent="agent2101")
    assert shown[0][xfer] < shown[1][xfer]

    # the case loop: 110 reports "dispatched", the 12345 console shows it
    await p110.locator(f'#received-list li[data-transfer="{xfer}"] button[data-feedback="dispatched"]').click()
    fed_back = p12345.locator(f'#sent-list li[data-transfer="{xfer}"] [data-field="feedback"]')
    await p12345.locator(f'#sent-list li[data-transfer="{xfer}"] [data-outcome="dispatched"]').wait_for()
    assert await fed_back.inner_text() == "已派警/派单"
    await p110.screenshot(path=str(shots_dir() / "console-110.png"))
    await p12345.screenshot(path=str(shots_dir() / "console-12345.png"))

    # the supervisor: a caller waits at 110 (its only phone is busy); raise it, then switch the mode
    waiting = cl.lab.sim.place_call(WAITING, "110")
    sup = await browsers.open(cl.base, cl.desks["sup"], cl.desks["sup"].agent, "en")
    row = sup.locator(f'#queues tr[data-call="{waiting.linkedid}"]')
    await row.wait_for()
    assert await row.locator('[data-field="priority"]').inner_text() == "0"
    await row.locator("button[data-raise]").click()
    await row.locator('[data-field="priority"]').filter(has_text="10").wait_for()
    await sup.locator('#mode-buttons button[data-mode="surge"]').click()
    await sup.locator("#confirm[open]").wait_for()
    await sup.locator("#confirm-yes").click()
    await sup.locator('#mode[data-mode="surge"]').wait_for()
    assert cl.app.engine.mode == "surge"
    await p110.locator('#mode[data-mode="surge"]').wait_for()  # every console follows
    width = await sup.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"]
    await sup.screenshot(path=str(shots_dir() / "console-supervisor.png"))

    # to remote seats by hand: the queue's button, a confirmation, the overflow starts (reason manual)
    await sup.locator('#queues table[data-queue="q-110"] button[data-overflow="q-110"]').click()
    await sup.locator("#confirm[open]").wait_for()
    await sup.locator("#confirm-yes").click()
    started = await cl.lab.event("queue.overflow_started", queue="q-110")
    assert started.data()["reason"] == "manual" and started.data()["waiting"] == 1
