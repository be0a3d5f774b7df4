"""Overload (issue 17.5), the probes: ``/healthz`` and ``/readyz`` are answered by the web port's accepting
thread, so a busy event loop does not hold them; a loop that stopped refreshing fails them (503 stalled);
everything else is still served by the loop. Checked by ordering (an answer that arrives while the loop is
provably held), never by a timing threshold."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from concurrent.futures import Future

import orjson
import pytest

from callbridge.store.live import LiveBoard
from callbridge.web.probes import BUSY_S, SWITCH_S, ProbeFront, probe_path
from callbridge.web.server import WebServer


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
async def web() -> AsyncIterator[tuple[WebServer, dict[str, object]]]:
    state: dict[str, object] = {"ready": True, "ami": True}
    server = WebServer(None, LiveBoard(["12345"]), token="t0ken", readiness=lambda: dict(state))
    await server.start()
    try:
        yield server, state
    finally:
        await server.stop()


def test_only_a_get_of_a_probe_path_is_a_probe() -> None:
    assert probe_path(b"GET /healthz HTTP/1.1\r\n") == b"/healthz"
    assert probe_path(b"GET /readyz?verbose=1 HTTP/1.0\r\n") == b"/readyz"
    for line in (b"HEAD /healthz HTTP/1.1\r\n", b"GET /healthzz HTTP/1.1\r\n", b"GET /healthz\r\n", b"HELLO\r\n"):
        assert probe_path(line) is None, line


async def test_probes_are_answered_while_the_event_loop_is_held(web: tuple[WebServer, dict[str, object]]) -> None:
    server, state = web
    base = server.url
    state["ready"] = False
    await asyncio.sleep(0.3)  # one refresh of the snapshot (the loop would answer fresh anyway)
    answers: list[tuple[int, dict[str, object]]] = []
    both_answered = threading.Event()

    def prober() -> None:
        answers.append(get(base + "/healthz"))
        answers.append(get(base + "/readyz"))
        both_answered.set()

    thread = threading.Thread(target=prober)
    thread.start()
    # Hold the event loop (a flood's slice, a long flush) until both probes were answered — or 10 s.
    held_through = both_answered.wait(timeout=10)
    thread.join()
    assert held_through, "a probe needed the event loop"
    assert answers[0] == (200, {"status": "ok"})
    assert answers[1][0] == 503 and answers[1][1]["ready"] is False  # the snapshot the loop left: not ready


async def test_a_request_that_is_not_a_probe_is_still_served_by_the_loop(
    web: tuple[WebServer, dict[str, object]],
) -> None:
    server, _ = web
    status, body = await asyncio.to_thread(get, server.url + "/api/live?token=t0ken")
    assert status == 200 and "hotlines" in body  # token-checked and routed by the loop's handler


def test_a_snapshot_the_loop_stopped_refreshing_fails_both_probes() -> None:
    now = [1000.0]
    front = ProbeFront("127.0.0.1", 0, lambda sock: sock.close(), clock=lambda: now[0], stale_s=5.0)
    try:
        front.publish(200, orjson.dumps({"ready": True}))
        assert front.answer(b"/readyz") == (200, b'{"ready":true}')
        now[0] += 4.9
        assert front.answer(b"/healthz")[0] == 200
        now[0] += 0.2  # 5.1 s without a refresh: the loop is stuck, not just busy
        for path in (b"/healthz", b"/readyz"):
            status, body = front.answer(path)
            assert status == 503 and orjson.loads(body)["status"] == "stalled", path
    finally:
        front.stop()


def test_after_the_loop_missed_an_ask_the_snapshot_answers_without_asking_for_a_while() -> None:
    now = [1000.0]
    asks: list[Future[tuple[int, bytes]]] = []

    def busy_loop() -> Future[tuple[int, bytes]]:  # a loop that never gets to the ask
        asks.append(Future())
        return asks[-1]

    front = ProbeFront("127.0.0.1", 0, lambda sock: sock.close(), clock=lambda: now[0])
    try:
        front.ask = busy_loop
        front.publish(200, orjson.dumps({"ready": True}))
        for _ in range(5):
            assert front.answer(b"/readyz") == (200, b'{"ready":true}')  # the snapshot
        assert len(asks) == 1 and asks[0].cancelled()  # asked once; the late ask withdrawn
        now[0] += BUSY_S  # after a while the loop is asked again (it may have time by now)
        front.answer(b"/readyz")
        assert len(asks) == 2
    finally:
        front.stop()


def test_the_switch_interval_is_short_while_the_front_runs_and_restored_after() -> None:
    before = sys.getswitchinterval()
    front = ProbeFront("127.0.0.1", 0, lambda sock: sock.close())
    front.start()
    try:
        assert sys.getswitchinterval() == min(before, SWITCH_S)
    finally:
        front.stop()
    assert sys.getswitchinterval() == before


def test_a_probe_whose_request_comes_after_the_connection_is_still_answered_by_the_thread() -> None:
    front = ProbeFront("127.0.0.1", 0, lambda sock: sock.close())  # the loop would close it: no answer
    front.start()
    try:
        with socket.create_connection((front.host, front.port), timeout=10) as conn:
            time.sleep(0.05)  # accepted and peeked with nothing there yet: the waiting peek takes it
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b'{"status":"ok"}')
        assert front.answered == 1
    finally:
        front.stop()
