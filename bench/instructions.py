"""Instructions per AMI event of each ingest client, counted by valgrind (callgrind): a load-proof companion
to the ingest benchmark's rates.

    python -m bench.instructions [callbridge callbridge_core panoramisk bare]

Wall-clock rates on a shared 2-core machine swing by 2x from one minute to the next; instruction counts do
not. Each client reads two streams of different sizes from :mod:`bench.ami_server` under callgrind; the
difference of the two totals divided by the difference in events is the cost per event, free of start-up
(imports, login). Instructions are not time (cache misses and branch mispredictions are not counted): the
benchmark's rates stay the measure of record, this shows where a gap is not about the work done.
Needs ``valgrind`` (``apt-get install valgrind``); not part of ``python -m bench``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from bench.amistream import stream_file
from bench.common import REPO, python_subprocess

SIZES = (10_000, 30_000)  # calls' worth of events asked of amistream; the real counts come back with the file

_RUN_CLIENT = """
import sys
from bench.common import production_logging, run_async
from bench import ingest
production_logging()
name, port = sys.argv[1], int(sys.argv[2])
with ingest.daemon_gc(name.startswith("callbridge")):
    run_async(ingest.CLIENTS[name](port), "uvloop")
"""


def instructions(client: str, stream: str) -> int:
    with python_subprocess("bench.ami_server", stream) as (_, port):
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _RUN_CLIENT,
             client, port],
            cwd=REPO, capture_output=True, text=True, check=True, timeout=1800,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind for {client}: {out.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    clients = argv or ["callbridge", "callbridge_core", "panoramisk", "bare"]
    (small, n_small), (large, n_large) = (stream_file(size) for size in SIZES)
    per_event = {c: (instructions(c, str(large)) - instructions(c, str(small))) / (n_large - n_small) for c in clients}
    for client, cost in per_event.items():
        # Read like the benchmark's ratios: "2.8x panoramisk" = panoramisk needs 2.8x the instructions.
        ratios = "  ".join(f"{per_event[b] / cost:.2f}x {b}" for b in ("panoramisk", "bare") if b in per_event)
        print(f"{client:16s} {cost:10,.0f} instructions/event   {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
