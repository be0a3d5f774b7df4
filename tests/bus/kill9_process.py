"""A publisher in its own process, to be killed with SIGKILL: ``python kill9_process.py HOST PORT OUTBOX MODE``.

``produce``: numbered events (``test.ping``, ``n`` = 0, 1, …; 7 calls) in batches of 20, one batch per
event-loop iteration as the daemon hands them over, printing the count every 1,000, until ``TOTAL``;
then it waits to be killed.
``drain``: publish what the outbox holds, print ``drained``, stop.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bus_helpers import Ping

from callbridge.bus.config import BusSettings
from callbridge.bus.publisher import Publisher
from callbridge.log import configure_logging

TOTAL = 100_000
BATCH = 20


async def main(host: str, port: int, outbox: Path, mode: str) -> None:
    settings = BusSettings(host=host, port=port, site="lab", outbox_path=outbox, keepalive=5,
                           outbox_max_rows=1_000_000)  # fmt: skip
    publisher = Publisher(settings)
    task = asyncio.create_task(publisher.run())
    async with asyncio.timeout(10):
        await publisher.wait_connected()
    print("connected", flush=True)
    if mode == "drain":
        async with asyncio.timeout(60):
            await publisher.wait_drained()
        publisher.stop()
        await task
        print("drained", flush=True)
        return
    for first in range(0, TOTAL, BATCH):
        events = [Ping(call_id=f"call-{n % 7}", hotline="110", ts=1.0 + n, n=n) for n in range(first, first + BATCH)]
        publisher.publish_events_nowait(events)
        await asyncio.sleep(0)  # the next batch in the next loop iteration: the commit of this one runs first
        if (first + BATCH) % 1000 == 0:
            print(first + BATCH, flush=True)
    await task


if __name__ == "__main__":
    configure_logging(format="json", level="warning", stream=sys.stderr)  # stdout is the parent's channel
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
