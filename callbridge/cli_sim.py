"""``callbridge sim``: run the PBX simulator standalone (an AMI server behaving like Asterisk 22)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from callbridge.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="simulator YAML (default: the built-in lab set-up)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5038, help="AMI port (default 5038; 0 = any free port)")
    parser.add_argument("--dialplan", default=None, help="extensions.conf to run instead of the configured one")
    parser.add_argument("--time-scale", type=float, default=None, help="simulated seconds per real second")
    parser.add_argument("--traffic", action="store_true", help="start the configured traffic generator")


async def _run(args: argparse.Namespace) -> int:
    from callbridge.sim.config import SimConfig, lab_config, load_config
    from callbridge.sim.simulator import Simulator
    from callbridge.sim.traffic import TrafficGenerator

    config: SimConfig = load_config(args.config) if args.config else lab_config()
    if args.dialplan:
        config.dialplan = args.dialplan
        config.base_dir = "."
    if args.time_scale:
        config.time_scale = args.time_scale
    sim = Simulator(config)
    port = await sim.start(args.host, args.port)
    print(f"callbridge sim: AMI listening on {args.host}:{port}", flush=True)
    traffic = None
    if args.traffic and config.traffic is not None:
        traffic = TrafficGenerator(sim, config.traffic)
        traffic.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if traffic is not None:
        traffic.stop()
    await sim.stop()
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ConfigError as exc:
        print(f"callbridge sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"callbridge sim: cannot listen: {exc}", file=sys.stderr)
        return 1
