"""Helpers of the web tests: real HTTP requests with urllib, the served state."""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The scenario lives beside the store tests; the web tests serve the same morning.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from records_scenario import END

from callbridge.store.live import LiveBoard
from callbridge.store.records import RecordStore
from callbridge.web.server import WebServer

TOKEN = "wallboard-test-token"


@dataclass
class Served:
    server: WebServer
    board: LiveBoard
    store: RecordStore
    readiness: dict[str, Any] = field(default_factory=lambda: {"ami": True, "broker": True})
    now: float = END

    @property
    def base(self) -> str:
        return self.server.url


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def _get(url: str, headers: dict[str, str] | None, method: str) -> Reply:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


async def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """A real HTTP request with urllib (in a thread: the server runs on this loop)."""
    return await asyncio.wait_for(asyncio.to_thread(_get, url, headers, method), 15)


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


