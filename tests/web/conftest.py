"""Web fixtures: a real server on a free port over the records and board of the scenario morning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import TOKEN, Served  # also puts tests/store on sys.path for records_scenario

from callbridge.store.live import LiveBoard
from callbridge.store.records import RecordStore
from callbridge.store.writer import RecordWriter
from callbridge.web.server import WebServer

from records_scenario import TZ, morning  # isort: skip


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = RecordStore.sqlite(tmp_path / "records.db")
    store.write(morning())
    board = LiveBoard(["12345", "110", "120"], tz=TZ)
    for e in morning():
        board.feed(e)
    writer = RecordWriter(store, bound=100)
    holder: dict[str, Any] = {"ami": True, "broker": True}
    state = Served(None, board, store, holder)  # type: ignore[arg-type]
    server = WebServer(
        store, board, host="127.0.0.1", port=0, token=TOKEN, readiness=lambda: state.readiness, writer=writer,
        tick_s=0.2, clock=lambda: state.now,
    )  # fmt: skip
    state.server = server
    await asyncio.wait_for(server.start(), 5)
    try:
        yield state
    finally:
        await asyncio.wait_for(server.stop(), 5)
        store.close()
