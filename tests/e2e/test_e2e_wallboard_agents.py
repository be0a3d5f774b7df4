"""The daemon's own wallboard knows how many agents are free (no call event carries that count)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from callbridge.app import App
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from tests.e2e.conftest import SECRET, copy_dialplans, sim_config, sim_phone_context

pytestmark = pytest.mark.date_sensitive  # the board's counts are today's


def free_on_board(app: App, hotline: str) -> Any:
    tiles = {t["hotline"]: t for t in app.board.snapshot(time.time())["hotlines"]}  # the App's default clock
    return tiles[hotline]["agents_free"]


async def until(what: Any, label: str, within: float = 8.0) -> None:
    async with asyncio.timeout(within):
        while not what():  # noqa: ASYNC110 - both sides run on this loop; polling their state is the honest wait
            await asyncio.sleep(0.05)


async def test_board_shows_free_agents_from_the_queues(tmp_path: Path) -> None:
    dialplans = copy_dialplans(tmp_path / "dialplans")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    sim = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)], login_fail_delay=0.05)
    port = await sim.start()
    settings = Settings.model_validate({
        "ami": {"host": "127.0.0.1", "port": port, "auth": "plain"},
        "store": {"path": str(tmp_path / "records.sqlite3")},
    })
    app = App(settings, ami_secret=SECRET, dialplan_path=dialplans, enable_bus=False, enable_store=True)
    try:
        async with asyncio.timeout(10):
            await app.start()
        await until(lambda: app.tracker.queues, "resync saw the queues")
        await until(lambda: free_on_board(app, "12345") == 3, "three free 12345 agents on the board")
        caller = sim.place_call("13800138000", "12345")
        await until(lambda: any(p.startswith("PJSIP/agent") for p in sim.bridged_with(caller.name)), "answered")
        await until(lambda: free_on_board(app, "12345") == 2, "one agent busy on the board")
    finally:
        async with asyncio.timeout(10):
            await app.stop()
            await sim.stop()
        shutil.rmtree(dialplans, ignore_errors=True)
