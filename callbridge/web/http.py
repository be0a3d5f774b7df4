"""A deliberately small HTTP/1.1 server on asyncio streams: GET, and POST for the console, one request
per connection.

Enough for a read-only wallboard, a JSON API, ``/metrics``, a Server-Sent Events stream and the agent
console's actions (a POST with a body of at most :data:`MAX_BODY` bytes, only under ``post_prefix``),
without a web framework. Every response closes the connection (``Connection: close``), which browsers,
urllib and Prometheus all handle; SSE responses stay open until the client leaves or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from callbridge.web.probes import ProbeFront

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # request line + headers
HEAD_TIMEOUT_S = 10.0  # a client that never finishes its request head is dropped
MAX_BODY = 64 * 1024  # a console action is a small JSON object


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # decoded, without the query
    query: dict[str, str]  # first value of each parameter
    headers: dict[str, str]  # lower-case names
    body: bytes = b""  # POST only

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    #: When set, the body is streamed from this iterator (SSE) after the head.
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(cls, value: object, status: int = 200) -> Response:
        return cls(status, orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS), "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, text.encode(), content_type)

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": HTTPStatus(status).phrase.lower().replace(" ", "_"), "message": message}, status)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    pass


async def read_request(reader: asyncio.StreamReader) -> Request:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("malformed header")
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return Request(method.upper(), unquote(url.path), query, headers)


async def read_body(reader: asyncio.StreamReader, request: Request) -> Request:
    """The request with its body (``Content-Length`` bytes, at most :data:`MAX_BODY`)."""
    try:
        length = int(request.header("content-length") or "0")
    except ValueError as exc:
        raise BadRequest("bad Content-Length") from exc
    if length < 0 or length > MAX_BODY:
        raise BadRequest(f"body over {MAX_BODY} bytes")
    body = await asyncio.wait_for(reader.readexactly(length), HEAD_TIMEOUT_S) if length else b""
    return Request(request.method, request.path, request.query, request.headers, body)


def _head(resp: Response) -> bytes:
    phrase = HTTPStatus(resp.status).phrase
    headers = {
        "Content-Type": resp.content_type,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Connection": "close",
        **resp.headers,
    }
    if resp.stream is None:
        headers["Content-Length"] = str(len(resp.body))
    lines = [f"HTTP/1.1 {resp.status} {phrase}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """Accept connections and hand each request to ``handler``; track connections so stop() ends them."""

    def __init__(
        self, handler: Handler, host: str = "127.0.0.1", port: int = 0, post_prefix: str | None = None,
        *, threaded_probes: bool = False,
    ) -> None:
        self.handler = handler
        #: /healthz and /readyz answered on the accepting thread (callbridge/web/probes.py), the rest here
        self.threaded_probes = threaded_probes
        self.front: ProbeFront | None = None
        #: paths starting with this accept POST (the console's actions); everything else is GET only
        self.post_prefix = post_prefix
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.threaded_probes:
            loop = asyncio.get_running_loop()
            self.front = ProbeFront(self.host, self.port, lambda sock: self._hand_over(loop, sock))
            self.port = self.front.port
            self.front.start()
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    def _hand_over(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """From the probe thread: a connection for the loop to serve."""
        try:
            loop.call_soon_threadsafe(self._adopt, sock)
        except RuntimeError:  # the loop is closed: nobody will serve it
            sock.close()

    def _adopt(self, sock: socket.socket) -> None:
        task = asyncio.ensure_future(self._serve_socket(sock))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve_socket(self, sock: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_HEAD)
        except OSError:
            sock.close()
            return
        await self._serve(reader, writer)

    async def stop(self) -> None:
        if self.front is not None:
            front, self.front = self.front, None
            await asyncio.to_thread(front.stop)
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _may_post(self, request: Request) -> bool:
        return request.method == "POST" and self.post_prefix is not None and request.path.startswith(self.post_prefix)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if self._may_post(request):
                request = await read_body(reader, request)
        except BadRequest as exc:
            resp = Response.error(400, str(exc))
        else:
            if request.method not in ("GET", "HEAD") and not self._may_post(request):
                resp = Response.error(405, "read-only server: GET only")
                resp.headers["Allow"] = "GET, HEAD"
            else:
                try:
                    resp = await self.handler(request)
                except Exception:
                    log.exception("web handler failed for %s", request.path)
                    resp = Response.error(500, "internal error")
            if request.method == "HEAD":
                resp.body, resp.stream = b"", None
        writer.write(_head(resp) + resp.body)
        await writer.drain()
        if resp.stream is not None:
            async for chunk in resp.stream:
                writer.write(chunk)
                await writer.drain()
