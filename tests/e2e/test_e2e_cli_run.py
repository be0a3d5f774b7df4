"""``callbridge run`` as a process: connects, rejects an invalid reload on SIGHUP, stops on SIGTERM
without touching the call in progress."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from tests.e2e.conftest import ROOT, SECRET, copy_dialplans, sim_config, sim_phone_context


async def read_until(stream: asyncio.StreamReader, lines: list[dict[str, object]], event: str) -> dict[str, object]:
    async with asyncio.timeout(15):
        while True:
            for line in lines:
                if line.get("event") == event:
                    return line
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"process ended before {event}: {lines[-5:]}")
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))


async def test_run_reload_on_sighup_and_graceful_sigterm(tmp_path: Path) -> None:
    dialplans = copy_dialplans(tmp_path / "dialplans")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    sim = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)])
    port = await sim.start()
    settings = tmp_path / "callbridge.yaml"
    settings.write_text(
        f"ami: {{host: 127.0.0.1, port: {port}, auth: plain}}\n"
        f"dialplan: {{path: {dialplans}}}\nlog: {{format: json}}\nweb: {{port: 0}}\n"
        f"store: {{path: {tmp_path / 'records.sqlite3'}}}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "CALLBRIDGE_AMI_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "run", "--config", str(settings), "--no-bus",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[dict[str, object]] = []
    try:
        await read_until(proc.stderr, lines, "ami.connected")
        call = sim.place_call("13700000011", "12345")
        await asyncio.sleep(1.0)
        (dialplans / "zz-broken.yaml").write_text("hotlines: {110: {kind: nonsense}}\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        rejected = await read_until(proc.stderr, lines, "dialplan.rejected")
        assert rejected["reason"] in ("sighup", "file_change")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            rest = await proc.stderr.read()
            assert await proc.wait() == 0
        for raw in rest.splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        assert [line for line in lines if line.get("event") == "callbridge.stopped"]
        assert not call.hungup  # graceful: no call is touched on the way out
        assert (tmp_path / "records.sqlite3").is_file()  # the records store was running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.stop()
