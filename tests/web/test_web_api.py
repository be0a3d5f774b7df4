"""The web server over real HTTP: health, token, records API (JSON and CSV), KPIs, metrics, SSE."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_helpers import TOKEN, Reply, Served, bearer, fetch

from callbridge.store.projection import EventRecord
from callbridge.web.server import readiness


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) → value of every sample in a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


async def readyz_once_it_says(served: Served, status: int) -> Reply:
    """/readyz once it answers ``status`` with the probe as set now. The probe thread answers with the loop's
    current verdict when the loop replies within 5 ms, else with the snapshot the loop refreshes every 0.25 s
    (web/probes.py): on a loaded machine a change shows within that refresh, not on the very next request.
    Fails after 3 s."""
    want = {k: v for k, v in dict(served.readiness).items() if k != "ready"}  # the probe as set now

    def shows_it(reply: Reply) -> bool:
        body = json.loads(reply.body)
        return reply.status == status and all(body.get(k) == v for k, v in want.items())

    deadline = asyncio.get_running_loop().time() + 3.0
    reply = await fetch(served.base + "/readyz")
    while not shows_it(reply) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        reply = await fetch(served.base + "/readyz")
    assert shows_it(reply), (status, want, reply.status, reply.body)
    return reply


async def test_health_is_open_and_readiness_follows_the_probe(served: Served) -> None:
    assert (await fetch(served.base + "/healthz")).status == 200
    ready = await fetch(served.base + "/readyz")
    assert ready.status == 200 and json.loads(ready.body)["ready"] is True
    served.readiness = {"ami": False, "broker": True, "outbox_depth": 12}
    down = await readyz_once_it_says(served, 503)
    assert json.loads(down.body) == {"ami": False, "broker": True, "outbox_depth": 12, "ready": False}
    served.readiness = {"ready": True, "ami": True, "broker": False, "outbox_below_bound": True}
    await readyz_once_it_says(served, 200)  # an explicit verdict wins


async def test_readiness_rule_ami_and_broker_or_outbox_room(served: Served) -> None:
    served.readiness = readiness(ami_connected=True, broker_connected=False, outbox_depth=3, outbox_bound=100)
    await readyz_once_it_says(served, 200)  # broker down, but the outbox has room
    served.readiness = readiness(ami_connected=True, broker_connected=False, outbox_depth=100, outbox_bound=100)
    await readyz_once_it_says(served, 503)
    served.readiness = readiness(ami_connected=False, broker_connected=True)
    reply = await readyz_once_it_says(served, 503)
    assert json.loads(reply.body)["ami"] is False


async def test_token_is_enforced_everywhere_but_health(served: Served) -> None:
    for path in ("/", "/api/calls", "/api/calls/c1", "/api/live", "/metrics", "/events/stream", "/api/kpi"):
        denied = await fetch(served.base + path)
        assert denied.status == 401, path
        assert denied.headers["www-authenticate"].startswith("Basic")
    wrong = await fetch(served.base + "/api/live", {"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await fetch(served.base + "/api/live", bearer())).status == 200
    assert (await fetch(served.base + f"/api/live?token={TOKEN}")).status == 200
    basic = base64.b64encode(f"wall:{TOKEN}".encode()).decode()
    assert (await fetch(served.base + "/api/live", {"Authorization": f"Basic {basic}"})).status == 200
    page = await fetch(served.base + f"/?token={TOKEN}")
    assert page.status == 200 and "热线联动大屏" in page.text and page.headers["content-type"].startswith("text/html")


async def test_calls_api_json_and_csv(served: Served) -> None:
    reply = await fetch(served.base + "/api/calls?number=13800000002", bearer())
    body = json.loads(reply.body)
    assert body["count"] == 2 and [c["call_id"] for c in body["calls"]] == ["c2", "c2-120"]
    frm, to = "2026-11-29T08:40:00%2B08:00", "2026-11-29T08:50:00%2B08:00"
    window = json.loads((await fetch(served.base + f"/api/calls?hotline=12345&from={frm}&to={to}", bearer())).body)
    assert [c["call_id"] for c in window["calls"]] == ["c9", "c10"]
    as_csv = await fetch(served.base + f"/api/calls?hotline=12345&from={frm}&to={to}&format=csv", bearer())
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["call_id"], r["outcome"], r["wait_s"]) for r in rows] == [("c9", "abandoned", "50.0"),
                                                                         ("c10", "abandoned", "70.0")]  # fmt: skip
    bad = await fetch(served.base + "/api/calls?from=yesterday-ish", bearer())
    assert bad.status == 400 and "ISO" in json.loads(bad.body)["message"]


async def test_call_timeline_api_both_sides(served: Served) -> None:
    tl = json.loads((await fetch(served.base + "/api/calls/c2-120", bearer())).body)
    assert set(tl["linked_call_ids"]) == {"c2", "c2-120"}
    assert tl["transfers"][0]["transfer_id"] == "X2" and tl["transfers"][0]["number_verified"] is False
    events_csv = await fetch(served.base + "/api/calls/c2?format=csv", bearer())
    rows = list(csv.DictReader(io.StringIO(events_csv.text)))
    assert len(rows) == len(tl["events"]) and "transfer.backup_line" in {r["type"] for r in rows}
    assert json.loads(rows[0]["data"])["caller_num"] == "13800000002"
    assert (await fetch(served.base + "/api/calls/unknown", bearer())).status == 404


async def test_kpi_api(served: Served) -> None:
    period = "2026-11-29T08:00:00%2B08:00..2026-11-29T09:00:00%2B08:00"
    kpi = json.loads((await fetch(served.base + f"/api/kpi?period={period}", bearer())).body)
    # 110: p1..p5 and the call transferred in from 12345 (answered there): 4 of 6
    assert kpi["hotlines"]["110"]["answer_rate"] == 4 / 6 and kpi["hotlines"]["110"]["nuisance_callers"] == 2
    # 12345: 8 of 10 finished offers, on its 80 % target; the 2 still waiting are in progress, not lost
    citizen = kpi["hotlines"]["12345"]
    assert (citizen["answer_rate"], citizen["in_progress"], citizen["below_target"]) == (0.8, 2, False)
    md = await fetch(served.base + f"/api/kpi?period={period}&format=markdown", bearer())
    assert "| 110 | 6 | 4 | 66.7% ⚠ |" in md.text
    assert (await fetch(served.base + "/api/kpi?period=someday", bearer())).status == 400


async def test_metrics_parse_and_carry_the_board(served: Served) -> None:
    reply = await fetch(served.base + "/metrics", bearer())
    assert reply.headers["content-type"].startswith("text/plain")
    samples = metric_samples(reply.text)
    assert samples[("callbridge_calls_offered_total", (("hotline", "12345"),))] == 12
    assert samples[("callbridge_calls_abandoned_total", (("hotline", "110"),))] == 2
    # "today" is the server's clock's day (the scenario's morning), whatever the date the test runs on
    assert samples[("callbridge_answer_rate_today", (("hotline", "110"),))] == pytest.approx(4 / 6)
    today = {n: samples[(f"callbridge_calls_{n}_today", (("hotline", "110"),))] for n in ("offered", "answered",
                                                                                          "abandoned")}  # fmt: skip
    assert today == {"offered": 6, "answered": 4, "abandoned": 2}
    assert samples[("callbridge_answer_rate_target", (("hotline", "110"),))] == 0.8
    assert samples[("callbridge_calls_waiting", (("hotline", "12345"),))] == 2
    key = (("from_hotline", "12345"), ("outcome", "completed"), ("to_hotline", "110"))
    assert samples[("callbridge_transfers_total", key)] == 1
    assert samples[("callbridge_overflow_seconds_total", (("hotline", "110"),))] == 900
    assert samples[("callbridge_records_queue_bound", ())] == 100


async def test_read_only_and_no_path_escape(served: Served) -> None:
    assert (await fetch(served.base + "/api/calls", bearer(), method="POST")).status == 405
    assert (await fetch(served.base + "/nothing-here", bearer())).status == 404
    assert (await fetch(served.base + "/static/../server.py")).status == 404
    assert (await fetch(served.base + "/static/wallboard.js")).status == 200


async def _next_snapshot(reader: asyncio.StreamReader) -> dict[str, object]:
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line, "stream closed"
        if line.startswith(b"data: "):
            return json.loads(line[6:])  # type: ignore[no-any-return]


async def test_sse_pushes_a_new_snapshot_when_a_call_arrives(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
    writer.write(f"GET /events/stream?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"200 OK" in head and b"text/event-stream" in head
    first = await _next_snapshot(reader)
    tiles = {t["hotline"]: t for t in first["hotlines"]}  # type: ignore[attr-defined]
    assert tiles["110"]["waiting"] == 0
    served.board.feed(EventRecord("call.offered", served.now, "new-1", "110", {"caller_num": "13511112222"}))
    served.board.feed(EventRecord("queue.joined", served.now, "new-1", "110", {"queue": "q-110"}))
    served.server.notify()
    for _ in range(20):
        snap = await _next_snapshot(reader)
        tiles = {t["hotline"]: t for t in snap["hotlines"]}  # type: ignore[attr-defined]
        if tiles["110"]["waiting"] == 1:
            break
    assert tiles["110"]["waiting"] == 1 and tiles["110"]["offered_today"] == 7
    # stopping the server ends open streams instead of hanging
    await asyncio.wait_for(served.server.stop(), 5)
    rest = await asyncio.wait_for(reader.read(), 5)
    assert isinstance(rest, bytes)
    writer.close()


async def _raw(served: Served, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return reply


async def test_malformed_and_oversized_requests_get_400(served: Served) -> None:
    assert (await _raw(served, b"HELLO\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    huge = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"
    assert (await _raw(served, huge)).startswith(b"HTTP/1.1 400 ")
    head = await _raw(served, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")


async def test_live_board_and_kpi_agree_and_a_first_waiting_call_is_not_red(served: Served) -> None:
    live = json.loads((await fetch(served.base + "/api/live", bearer())).body)
    tiles = {t["hotline"]: t for t in live["hotlines"]}
    period = "2026-11-29T08:00:00%2B08:00..2026-11-29T09:00:00%2B08:00"
    kpi = json.loads((await fetch(served.base + f"/api/kpi?period={period}", bearer())).body)["hotlines"]
    for hotline, tile in tiles.items():  # one definition of 人工接通率 on the board and in the report
        assert (tile["answer_rate_today"], tile["below_target"]) == (
            kpi[hotline]["answer_rate"], kpi[hotline]["below_target"]), hotline  # fmt: skip
    assert tiles["12345"]["waiting"] == kpi["12345"]["in_progress"] == 2

    # the first call of the day at 122 waits in the queue: shown as waiting, no rate yet, not red
    served.board.feed(EventRecord("call.offered", served.now - 30, "first-122", "122", {"caller_num": "13500000001"}))
    served.board.feed(EventRecord("queue.joined", served.now - 30, "first-122", "122", {"queue": "q-122"}))
    live = json.loads((await fetch(served.base + "/api/live", bearer())).body)
    tile = next(t for t in live["hotlines"] if t["hotline"] == "122")
    assert (tile["waiting"], tile["offered_today"], tile["answer_rate_today"], tile["below_target"]) == (
        1, 1, None, False)  # fmt: skip
    samples = metric_samples((await fetch(served.base + "/metrics", bearer())).text)
    assert samples[("callbridge_calls_waiting", (("hotline", "122"),))] == 1
    assert ("callbridge_answer_rate_today", (("hotline", "122"),)) not in samples  # no rate, not 0
