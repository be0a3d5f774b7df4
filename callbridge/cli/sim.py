"""``callbridge sim``: run the PBX simulator standalone (an AMI server behaving like Asterisk 22).

Like Asterisk's ``manager.conf``, the simulator knows its AMI users' secrets, but never from a file in the
repository: each user names an environment variable (``CALLBRIDGE_SIM_SECRET`` by default). Without it the
command says exactly what to export, for the simulator and for the daemon that logs in to it (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from callbridge.errors import ConfigError
from callbridge.sim.config import SimConfig, lab_config, load_config
from callbridge.sim.simulator import Simulator
from callbridge.sim.traffic import TrafficGenerator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="simulator YAML (default: the built-in lab set-up)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5038, help="AMI port (default 5038; 0 = any free port)")
    parser.add_argument("--dialplan", default=None, help="extensions.conf to run instead of the configured one")
    parser.add_argument("--time-scale", type=float, default=None, help="simulated seconds per real second")
    parser.add_argument("--traffic", action="store_true", help="start the configured traffic generator")


async def _run(args: argparse.Namespace) -> int:
    config: SimConfig = load_config(args.config) if args.config else lab_config()
    missing = [u for u in config.ami.users if u.secret is None and not os.environ.get(u.secret_env)]
    if missing:
        user = missing[0]
        print(f"callbridge sim: AMI user {user.name!r} has no secret: set the environment variable {user.secret_env}"
              " (any local value; it is never read from a file), and give the daemon the same value, e.g.\n"
              f"  export {user.secret_env}=$(python3 -c 'import secrets; print(secrets.token_hex(16))')\n"
              f"  export CALLBRIDGE_AMI_SECRET=${user.secret_env}", file=sys.stderr)
        return 2
    if args.dialplan:
        config.dialplan = args.dialplan
        config.base_dir = "."
    if args.time_scale:
        config.time_scale = args.time_scale
    # handlers before the "listening" line: whoever reads it may stop us at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sim = Simulator(config)
    port = await sim.start(args.host, args.port)
    print(f"callbridge sim: AMI listening on {args.host}:{port}", flush=True)
    traffic = None
    if args.traffic and config.traffic is not None:
        traffic = TrafficGenerator(sim, config.traffic)
        traffic.start()
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
