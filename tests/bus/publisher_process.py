"""A publisher in its own process, for the last-will test: ``python publisher_process.py HOST PORT OUTBOX``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from callbridge.bus.config import BusSettings
from callbridge.bus.publisher import Publisher


async def main(host: str, port: int, outbox: Path) -> None:
    settings = BusSettings(host=host, port=port, site="lab", outbox_path=outbox, keepalive=5)
    publisher = Publisher(settings)
    task = asyncio.create_task(publisher.run())
    async with asyncio.timeout(10):
        await publisher.wait_connected()  # set once the retained "online" status is acknowledged
    print("connected", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
