"""Where the time goes: ``python -m bench.profile ingest|e2e [--events N]`` under pyinstrument.

* ``ingest``: the recorded-shape stream through AmiFramer → decode → CallTracker, offline (no TCP);
* ``e2e``: benchmark 2's daemon path (App: AMI client, tracker, engine, outbox, MQTT) for one run.

Prints pyinstrument's text tree (``pip install pyinstrument``; it is in the dev extras).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def profile_ingest(events: int) -> None:
    from bench.amistream import stream_file
    from callbridge.ami.decode import decode
    from callbridge.ami.framing import AmiFramer, AmiMessage
    from callbridge.calls.tracker import CallTracker

    path, _ = stream_file(events)
    data = path.read_bytes()
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    framer, tracker = AmiFramer(), CallTracker()
    for chunk in chunks:
        for frame in framer.feed(chunk):
            if type(frame) is AmiMessage and frame.kind == "event":
                tracker.feed(decode(frame))


def profile_e2e(events: int) -> None:
    from bench.amistream import stream_file
    from bench.common import python_subprocess, run_async
    from bench.e2e_mqtt import run_callbridge
    from callbridge.testing.mosquitto import Mosquitto

    path, count = stream_file(events)
    with (
        tempfile.TemporaryDirectory(prefix="cb-bench-prof-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
        python_subprocess("bench.ami_server", str(path)) as (_, port),
    ):
        run_async(run_callbridge(int(port), broker.port, Path(tmp), count))


def main() -> int:
    from pyinstrument import Profiler

    from bench.common import production_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("ingest", "e2e"))
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    production_logging()
    profiler = Profiler(interval=0.001)
    profiler.start()
    (profile_ingest if args.what == "ingest" else profile_e2e)(args.events)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
