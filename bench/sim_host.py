"""The PBX simulator for the benchmarks, in its own process (it must not share callbridge's core).

It runs the example dialplans' Asterisk rendering (as the demo does) with the lab's phones, and is
driven by one command per line on stdin, answering one line (JSON) on stdout::

    python -m bench.sim_host            → {"port": P, "user": "callbridge", "secret": "…"}
    load N                              → N callers to 12345 waiting in its queue; {"live": channels}
    traffic PER_MIN HOLD_S              → Poisson arrivals on every hotline, exponential holding
    presses K CODE                      → K one-key presses by agents in calls, timed (see ``presses``)
    press CODE                          → one agent in a call presses CODE (no timing)
    drain                               → stop traffic, hang up every channel; {"placed": …, "ended": …}
    quit

The secret is generated here and travels only through the pipe.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO

HOTLINE_DIDS = ("12345", "110", "119", "120", "122")
#: Edits to the benchmark's copy of the example dialplans: the carrier trunk limit (120 channels)
#: would refuse the thousands of concurrent callers the benchmarks hold.
EDITS = (("max_channels: 120", "max_channels: 10000"),)


class Host:
    def __init__(self, workdir: Path) -> None:
        from callbridge.demo.lab import copy_dialplans, sim_config, sim_phone_context
        from callbridge.dialplan import load_dialplan
        from callbridge.dialplan.render_asterisk import render_extensions
        from callbridge.sim.server import AmiUser
        from callbridge.sim.simulator import Simulator

        plans = copy_dialplans(REPO / "dialplans", workdir / "dialplans")
        for f in plans.glob("*.yaml"):
            text = f.read_text(encoding="utf-8")
            for old, new in EDITS:
                text = text.replace(old, new)
            f.write_text(text, encoding="utf-8")
        plan = load_dialplan(plans)
        extensions = workdir / "extensions.conf"
        extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
        self.secret = secrets.token_urlsafe(18)
        self.sim = Simulator(sim_config(plan, extensions, 0.05), users=[AmiUser("callbridge", self.secret)],
                             login_fail_delay=0.05)
        self.dialplans = plans
        self.traffic: Any = None
        self.placed = 0
        self.hungup = 0
        self.marks: list[tuple[str, float, dict[str, str]]] = []
        self.sim.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        name, _priv, headers = event
        if name == "Hangup":
            self.hungup += 1
        elif name in ("DTMFEnd", "BridgeEnter"):
            self.marks.append((name, time.perf_counter(), dict(headers)))

    def load(self, count: int) -> dict[str, Any]:
        for i in range(count):
            self.sim.place_call(f"139{i:08d}", "12345")
        self.placed += count
        return {"live": len(self.sim.channels())}

    def start_traffic(self, per_min: float, hold: float) -> dict[str, Any]:
        from callbridge.sim.config import HotlineTraffic, TrafficConfig
        from callbridge.sim.traffic import TrafficGenerator

        config = TrafficConfig(hotlines=[HotlineTraffic(did=d, calls_per_minute=per_min, mean_holding=hold)
                                         for d in HOTLINE_DIDS])
        self.traffic = TrafficGenerator(self.sim, config)
        self.traffic.start()
        return {"ok": True}

    async def drain(self) -> dict[str, Any]:
        if self.traffic is not None:
            self.traffic.stop()
            self.placed += self.traffic.stats.offered
        for name in list(self.sim.channels()):
            self.sim.hangup(name)
        for _ in range(500):
            if not self.sim.channels():
                break
            await asyncio.sleep(0.01)
        return {"placed": self.placed, "hangups": self.hungup, "live": len(self.sim.channels())}

    def press_any(self, code: str) -> dict[str, Any]:
        """One agent in a call presses ``code`` now (soak traffic); no measurement."""
        for name in self.sim.channels():
            if name.startswith("PJSIP/agent") and self.sim.bridged_with(name):
                agent = name.split("/", 1)[1].rsplit("-", 1)[0]
                self.sim.agent_press(agent, code, duration_ms=40, gap=0.02)
                return {"agent": agent}
        return {"agent": None}

    async def presses(self, count: int, code: str) -> dict[str, Any]:
        """``count`` times: an agent talking to a caller presses ``code``; per press the times from its
        last DTMFEnd to the first action callbridge sends, and to the caller entering a bridge with the
        destination hotline's trunk leg."""
        from bench.latency_probe import ActionProbe

        probe = ActionProbe(self.sim)
        samples: list[dict[str, float]] = []
        misses = 0
        stuck: set[str] = set()  # agent channels whose press missed: their call may be stuck mid-transfer
        for _ in range(count):
            found = await self._agent_in_call(stuck)
            if found is None:
                misses += 1
                continue
            channel, agent = found
            self.marks.clear()
            probe.reset()
            self.sim.agent_press(agent, code, duration_ms=40, gap=0.02)
            sample = await self._measure(agent, code, probe)
            if sample is None:
                misses += 1
                stuck.add(channel)  # press another agent next time (a refused call would refuse again)
            else:
                samples.append(sample)
            await asyncio.sleep(0.05)
        return {"samples": samples, "misses": misses}

    async def _agent_in_call(self, skip: set[str]) -> tuple[str, str] | None:
        """(channel, endpoint) of an agent talking to a caller, not one of ``skip``."""
        for _ in range(300):
            for name in self.sim.channels():
                if name.startswith("PJSIP/agent") and name not in skip and self.sim.bridged_with(name):
                    return name, name.split("/", 1)[1].rsplit("-", 1)[0]
            await asyncio.sleep(0.01)
        return None

    async def _measure(self, agent: str, code: str, probe: Any) -> dict[str, float] | None:
        dtmf_at = 0.0
        for _ in range(500):
            await asyncio.sleep(0.005)
            ends = [t for n, t, h in self.marks if n == "DTMFEnd" and agent in h.get("Channel", "")
                    and h.get("Digit") == code[-1]]
            if ends:
                dtmf_at = ends[0]
                break
        if not dtmf_at:
            return None
        for _ in range(1000):
            joined = [t for n, t, h in self.marks if n == "BridgeEnter" and t > dtmf_at
                      and "hotline-" in h.get("Channel", "")]
            if joined and probe.first_after(dtmf_at):
                return {"to_first_action_ms": (probe.first_after(dtmf_at) - dtmf_at) * 1000,
                        "to_complete_ms": (joined[0] - dtmf_at) * 1000}
            await asyncio.sleep(0.005)
        return None


async def main() -> int:
    from bench.common import production_logging

    production_logging()
    with tempfile.TemporaryDirectory(prefix="cb-bench-sim-") as tmp:
        host = Host(Path(tmp))
        port = await host.sim.start()
        hello = {"port": port, "user": "callbridge", "secret": host.secret, "dialplans": str(host.dialplans)}
        print(json.dumps(hello), flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                break
            cmd, args = line[0], line[1:]
            if cmd == "load":
                out = host.load(int(args[0]))
            elif cmd == "traffic":
                out = host.start_traffic(float(args[0]), float(args[1]))
            elif cmd == "drain":
                out = await host.drain()
            elif cmd == "presses":
                out = await host.presses(int(args[0]), args[1])
            elif cmd == "press":
                out = host.press_any(args[0])
            elif cmd == "live":
                out = {"live": len(host.sim.channels())}
            else:
                out = {"error": f"unknown command {cmd}"}
            print(json.dumps(out), flush=True)
        await host.sim.stop()
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    sys.exit(asyncio.run(main()))
