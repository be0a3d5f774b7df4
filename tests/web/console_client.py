"""A console user over plain HTTP (urllib in a thread): sign in, read the view, send actions."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any


class ConsoleClient:
    def __init__(self, base: str) -> None:
        self.base = base
        self.cookie = ""

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", "X-Console": "1", **(headers or {})}
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        req = urllib.request.Request(self.base + "/console" + path, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                cookie = resp.headers.get("Set-Cookie")
                if cookie:
                    self.cookie = cookie.split(";", 1)[0]
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, Any]:  # fmt: skip
        return await asyncio.wait_for(asyncio.to_thread(self._call, method, path, body, headers), 40)

    async def login(self, form: dict[str, Any]) -> tuple[int, Any]:
        return await self.request("POST", "/login", form)

    async def act(self, verb: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await self.request("POST", "/cmd/" + verb, body)
