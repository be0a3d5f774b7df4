"""The daemon's web face: health, readiness, metrics, the records API and the live wallboard.

Routes (GET): ``/healthz`` and ``/readyz`` (open, for orchestrators); everything else needs the token —
``Authorization: Bearer <token>``, ``?token=<token>`` (what a wall screen's browser uses) or HTTP basic
auth with the token as password: ``/`` wallboard · ``/static/*`` · ``/events/stream`` (SSE snapshots) ·
``/api/live`` · ``/api/calls`` · ``/api/calls/<id>`` · ``/api/kpi`` · ``/metrics``. The agent console
(``/console``, :mod:`callbridge.web.console`) signs its users in with their command keys instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future
from importlib import resources
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callbridge.store.kpi import compute
from callbridge.store.live import LiveBoard
from callbridge.store.periods import PeriodError, parse_instant, parse_period
from callbridge.store.records import CALL_COLUMNS, RecordStore, rows_to_csv
from callbridge.store.report import render_csv, render_markdown
from callbridge.store.writer import RecordWriter
from callbridge.web.console import PREFIX as CONSOLE_PREFIX
from callbridge.web.console import Console
from callbridge.web.http import HttpServer, Request, Response
from callbridge.web.metrics import build_registry
from callbridge.web.probes import REFRESH_S as PROBE_REFRESH_S

log = logging.getLogger(__name__)

STATIC_FILES = {"wallboard.js": "text/javascript; charset=utf-8", "wallboard.css": "text/css; charset=utf-8"}
EVENT_COLUMNS = ("at", "type", "call_id", "hotline", "data")


def _ready_default() -> dict[str, Any]:
    return {"ready": True}


def readiness(
    *, ami_connected: bool, broker_connected: bool, outbox_depth: int = 0, outbox_bound: int | None = None
) -> dict[str, Any]:
    """The ``/readyz`` verdict: AMI connected, and the broker reachable or the outbox still below its bound
    (while the outbox has room, nothing is lost by a broker outage)."""
    outbox_ok = outbox_bound is not None and outbox_depth < outbox_bound
    return {
        "ready": ami_connected and (broker_connected or outbox_ok),
        "ami": ami_connected,
        "broker": broker_connected,
        "outbox_depth": outbox_depth,
        "outbox_bound": outbox_bound,
    }


class WebServer:
    def __init__(
        self,
        store: RecordStore | None,
        board: LiveBoard,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        readiness: Callable[[], Mapping[str, Any]] = _ready_default,
        writer: RecordWriter | None = None,
        targets: Mapping[str, float] | None = None,
        tick_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        console: Console | None = None,
    ) -> None:
        self.store = store
        self.console = console
        self.board = board
        self.token = token or None
        self.readiness = readiness
        self.targets = dict(targets or {})
        self.tick_s = tick_s
        self.clock = clock
        self.registry = build_registry(board, writer, clock)
        self._http = HttpServer(self._route, host, port, post_prefix=CONSOLE_PREFIX + "/" if console else None,
                                threaded_probes=True)  # fmt: skip
        self._probe_refresh: asyncio.Task[None] | None = None
        self._listeners: set[asyncio.Event] = set()  # one per open SSE stream
        if self.token is None:
            log.warning("web: no token configured — the wallboard and API are open to anyone who can connect")

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return f"http://{self._http.host}:{self.port}"

    async def start(self) -> None:
        await self._http.start()
        if self._http.front is not None:
            self._http.front.ask = self._ask_ready(asyncio.get_running_loop())
            self._publish_probes()
            self._probe_refresh = asyncio.ensure_future(self._refresh_probes())
        log.info("web: listening on %s", self.url)

    async def stop(self) -> None:
        if self._probe_refresh is not None:
            self._probe_refresh.cancel()
            self._probe_refresh = None
        await self._http.stop()

    def _publish_probes(self) -> None:
        """The /readyz answer of now, for the probe thread (callbridge/web/probes.py)."""
        front = self._http.front
        if front is not None:
            resp = self._ready()
            front.publish(resp.status, resp.body)

    def _ask_ready(self, loop: asyncio.AbstractEventLoop) -> Callable[[], Future[tuple[int, bytes]]]:
        """For the probe thread: the loop's /readyz answer of now, as a future it may stop waiting for."""

        def ask() -> Future[tuple[int, bytes]]:
            future: Future[tuple[int, bytes]] = Future()

            def answer() -> None:
                if future.set_running_or_notify_cancel():
                    resp = self._ready()
                    future.set_result((resp.status, resp.body))

            loop.call_soon_threadsafe(answer)
            return future

        return ask

    async def _refresh_probes(self) -> None:
        while True:
            await asyncio.sleep(PROBE_REFRESH_S)
            self._publish_probes()

    async def serve(self) -> None:
        """Run until cancelled (for the app's TaskGroup)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def notify(self) -> None:
        """The board changed: push a snapshot to the wallboards now instead of at the next tick."""
        for listener in self._listeners:
            listener.set()

    # --- auth ------------------------------------------------------------------------------------------------

    def _authorised(self, req: Request) -> bool:
        if self.token is None:
            return True
        expected = self.token.encode()
        auth = req.header("authorization")
        scheme, _, value = auth.partition(" ")
        offered = b""
        if scheme.lower() == "bearer":
            offered = value.strip().encode()
        elif scheme.lower() == "basic":
            try:
                offered = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except ValueError:
                offered = b""
        elif "token" in req.query:
            offered = req.query["token"].encode()
        return hmac.compare_digest(offered, expected)

    # --- routing ---------------------------------------------------------------------------------------------

    async def _route(self, req: Request) -> Response:
        path = req.path
        if path in ("/healthz", "/readyz") or path.startswith("/static/"):
            return self._open_page(path)
        if self.console is not None and (path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")):
            return await self.console.handle(req)  # signed in with command keys, not the wallboard token
        if not self._authorised(req):
            resp = Response.error(401, "token required (Authorization: Bearer, ?token= or basic auth)")
            resp.headers["WWW-Authenticate"] = 'Basic realm="callbridge wallboard", charset="UTF-8"'
            return resp
        if path == "/api/kpi":
            return await self._kpi(req)
        if path == "/api/calls" or path.startswith("/api/calls/"):
            return await self._calls(req)
        page = self._page(path)
        return page if page is not None else Response.error(404, f"no such page: {path}")

    def _open_page(self, path: str) -> Response:
        """The pages open to anyone: health, readiness and the static files."""
        if path == "/healthz":
            return Response.json({"status": "ok"})
        if path == "/readyz":
            return self._ready()
        return _static(path.removeprefix("/static/"))

    def _page(self, path: str) -> Response | None:
        if path in ("/", "/index.html"):
            return _static("index.html", "text/html; charset=utf-8")
        if path == "/events/stream":
            return Response(200, content_type="text/event-stream; charset=utf-8", stream=self._sse())
        if path == "/metrics":
            return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if path == "/api/live":
            return Response.json(self.board.snapshot(self.clock()))
        return None

    def _ready(self) -> Response:
        try:
            state = dict(self.readiness())
        except Exception as exc:  # a failing probe means "not ready", never a crash
            state = {"ready": False, "error": str(exc)}
        ready = bool(state["ready"]) if "ready" in state else all(v for v in state.values() if isinstance(v, bool))
        state["ready"] = ready
        return Response.json(state, 200 if ready else 503)

    async def _calls(self, req: Request) -> Response:
        if self.store is None:
            return Response.error(503, "no records store configured")
        store = self.store
        want_csv = req.query.get("format") == "csv"
        if req.path.startswith("/api/calls/"):
            return await _timeline(store, req.path.removeprefix("/api/calls/"), want_csv)
        q = req.query
        try:
            start = parse_instant(q["from"]) if q.get("from") else None
            end = parse_instant(q["to"]) if q.get("to") else None
            limit = min(int(q.get("limit", "1000")), 100_000)
        except (PeriodError, ValueError) as exc:
            return Response.error(400, str(exc))
        rows = await asyncio.to_thread(
            store.search_calls,
            number=q.get("number") or None,
            start=start,
            end=end,
            hotline=q.get("hotline") or None,
            call_id=q.get("id") or None,
            limit=limit,
        )
        if want_csv:
            return _csv(rows_to_csv(rows, CALL_COLUMNS), "calls.csv")
        return Response.json({"count": len(rows), "calls": rows})

    async def _kpi(self, req: Request) -> Response:
        if self.store is None:
            return Response.error(503, "no records store configured")
        try:
            period = parse_period(req.query.get("period", "today"), now=self.clock())
        except PeriodError as exc:
            return Response.error(400, str(exc))
        records = await asyncio.to_thread(self.store.period_records, period.start, period.end)
        report = compute(records, self.targets, self.board.default_target)
        fmt = req.query.get("format", "json")
        if fmt == "csv":
            return _csv(render_csv(report, period), f"kpi-{period.label}.csv")
        if fmt == "markdown":
            return Response.text(render_markdown(report, period), content_type="text/markdown; charset=utf-8")
        return Response.json({
            "period": period.label, "start": period.start, "end": period.end,
            # the dataclass fields plus the derived counts a reader needs beside the rate
            "hotlines": {
                h: {**dataclasses.asdict(k), "in_progress": k.in_progress, "below_target": k.below_target}
                for h, k in report.hotlines.items()
            },
            "transfers_by_pair": [
                {"from": a, "to": b, "outcomes": o} for (a, b), o in report.transfers_by_pair.items()
            ],
        })  # fmt: skip

    async def _sse(self) -> AsyncIterator[bytes]:
        # retry: how long the browser waits before reconnecting after the daemon restarts.
        yield b"retry: 2000\n\n"
        changed = asyncio.Event()
        self._listeners.add(changed)
        try:
            while True:
                changed.clear()
                snap = orjson.dumps(self.board.snapshot(self.clock()))
                yield b"event: snapshot\ndata: " + snap + b"\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.tick_s)
        finally:
            self._listeners.discard(changed)


async def _timeline(store: RecordStore, call_id: str, want_csv: bool) -> Response:
    timeline = await asyncio.to_thread(store.call_timeline, call_id)
    if timeline is None:
        return Response.error(404, f"no call {call_id!r}")
    if want_csv:
        rows = [{**e, "data": orjson.dumps(e["data"]).decode()} for e in timeline["events"]]
        return _csv(rows_to_csv(rows, EVENT_COLUMNS), f"call-{call_id}.csv")
    return Response.json(timeline)


def _static(name: str, content_type: str | None = None) -> Response:
    kind = content_type or STATIC_FILES.get(name)
    if kind is None:
        return Response.error(404, f"no such file: {name}")
    body = resources.files("callbridge.web").joinpath("static", name).read_bytes()
    return Response(200, body, kind)


def _csv(text: str, filename: str) -> Response:
    resp = Response.text(text, content_type="text/csv; charset=utf-8")
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp
