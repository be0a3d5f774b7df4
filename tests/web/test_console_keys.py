"""The console's keyboard shortcuts, key by key: console.js's key map (``keyAction``, between its
``keymap:begin`` / ``keymap:end`` markers) run alone in headless Chromium on a blank page — a destination's
digit transfers while talking, Enter completes and Esc cancels an attended hand-over, L leaves a three-way
room, and every other key or state does nothing. The full browser test presses ``1`` against the daemon;
this covers the rest without a daemon (lighter and steadier on a loaded machine)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONSOLE_JS = Path(__file__).resolve().parents[2] / "callbridge" / "web" / "static" / "console.js"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.browser

DESTS = [{"to_hotline": "110", "mode": "blind", "shortcut": "1"},
         {"to_hotline": "119", "mode": "attended", "shortcut": "2"},
         {"to_hotline": "120", "mode": "threeway", "shortcut": "3"}]  # fmt: skip
TALKING = {"destinations": DESTS, "call": {"call_id": "c1", "state": "talking"}, "outgoing": None}
ATTENDED = {**TALKING, "outgoing": {"call_id": "c1", "transfer_id": "x1", "mode": "attended"}}
THREEWAY = {**TALKING, "outgoing": {"call_id": "c1", "transfer_id": "x2", "mode": "threeway"}}
RINGING = {**TALKING, "call": {"call_id": "c1", "state": "ringing"}}

CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("digit 2 transfers to the second destination", TALKING, "2", {"dest": DESTS[1]}),
    ("digit 3 to the three-way destination", TALKING, "3", {"dest": DESTS[2]}),
    ("digit 1", TALKING, "1", {"dest": DESTS[0]}),
    ("a digit no destination has", TALKING, "7", None),
    ("a digit while a hand-over is running", ATTENDED, "2", None),
    ("a digit while the phone only rings", RINGING, "2", None),
    ("Enter completes the attended hand-over", ATTENDED, "Enter",
     {"verb": "complete", "body": {"call_id": "c1", "transfer_id": "x1"}}),
    ("Esc cancels it", ATTENDED, "Escape", {"verb": "cancel", "body": {"call_id": "c1", "transfer_id": "x1"}}),
    ("L does not leave an attended hand-over", ATTENDED, "L", None),
    ("L leaves the three-way room", THREEWAY, "L", {"verb": "leave", "body": {"call_id": "c1"}}),
    ("l too", THREEWAY, "l", {"verb": "leave", "body": {"call_id": "c1"}}),
    ("Enter does not complete a three-way", THREEWAY, "Enter", None),
    ("Esc does not cancel a three-way", THREEWAY, "Escape", None),
    ("Enter with nothing running", TALKING, "Enter", None),
    ("Esc with nothing running", TALKING, "Escape", None),
    ("L with nothing running", TALKING, "L", None),
]  # fmt: skip


def key_map_source() -> str:
    text = CONSOLE_JS.read_text(encoding="utf-8")
    found = re.search(r"// keymap:begin[^\n]*\n(.*?)// keymap:end", text, re.S)
    assert found, "console.js lost its keymap:begin / keymap:end markers"
    assert "function keyAction(view, key)" in found.group(1)
    return found.group(1)


async def test_every_shortcut_does_what_the_console_says() -> None:
    if CHROMIUM is None:
        pytest.skip("browser test skipped: no chromium binary (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright  # noqa: PLC0415  optional extra, as in the browser test
    except ImportError:
        pytest.skip("browser test skipped: playwright is not installed (pip install playwright)")
    cases = json.dumps([[view, key] for _, view, key, _ in CASES])
    script = f"(() => {{ {key_map_source()}\n return {cases}.map(([v, k]) => keyAction(v, k)); }})()"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        try:
            page = await browser.new_page()
            got = await page.evaluate(script)
        finally:
            await browser.close()
    for (label, _, key, want), result in zip(CASES, got, strict=True):
        assert result == want, (label, key, result)
