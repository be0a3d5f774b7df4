"""Strings from every Unicode category in every string field of every command verb, through a real mosquitto
into the daemon (simulator PBX): every command gets a reply, every value outside its documented alphabet is
refused, and event delivery goes on (the publisher's connection never drops). Also: ``/readyz`` follows a
stalled delivery."""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import typing
import unicodedata
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.bus import idents
from callbridge.bus.commands import MAX_COMMAND_BYTES, VERBS
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import Lab, open_lab

pytestmark = pytest.mark.mosquitto

#: The documented alphabet of every string field (docs/mqtt.md, "Identifiers").
FIELD_PATTERNS = {
    "call_id": idents.CALL_ID, "agent": idents.AGENT, "to_hotline": idents.HOTLINE, "hotline": idents.HOTLINE,
    "category": idents.CATEGORY, "ticket": idents.TICKET, "transfer_id": idents.KEY, "idempotency_key": idents.KEY,
    "handover.key": idents.KEY, "key": idents.KEY, "caller_num": idents.CALLER_NUM,
    "reply_to": idents.REPLY_TO, "sig": r"^[0-9A-Fa-f]{64}$",
    "mode@set_mode": idents.NAME, "queue": idents.NAME, "summary": idents.TEXT_PATTERN, "reason": idents.TEXT_PATTERN,
    "correlation_id": idents.TEXT_PATTERN, "handover.value": idents.TEXT_PATTERN,
}  # fmt: skip
MAX_LENGTH = {"summary": 4000, "reason": 500, "correlation_id": 256, "handover.value": 1000}

BASE: dict[str, dict[str, Any]] = {
    "transfer": {"call_id": "fuzz.1", "agent": "agent1001", "to_hotline": "110", "summary": "s", "ticket": "T-1",
                 "category": "police", "reason": None, "handover": {"k": "v"}},
    "complete": {"call_id": "fuzz.1", "agent": "agent1001"},
    "cancel": {"call_id": "fuzz.1", "agent": "agent1001"},
    "three_way": {"call_id": "fuzz.1", "agent": "agent1001", "to_hotline": "110", "handover": {"k": "v"}},
    "leave": {"call_id": "fuzz.1", "agent": "agent1001"},
    "set_priority": {"call_id": "fuzz.1", "agent": "agent1001", "priority": 5},
    "set_mode": {"mode": "normal", "role": "supervisor"},
    "reload": {"role": "supervisor"},
    "status": {},
    "handover_feedback": {"transfer_id": "fuzz.1", "agent": "agent1001", "outcome": "accepted"},
    "nuisance_release": {"caller_num": "13912345678", "role": "supervisor"},
    "overflow_now": {"queue": "q-12345", "role": "supervisor"},
}  # fmt: skip


def category_samples() -> list[str]:
    """Two code points of every Unicode general category (first and a seeded pick), as one-char strings."""
    by_category: dict[str, list[int]] = {}
    for cp in range(sys.maxunicode + 1):
        by_category.setdefault(unicodedata.category(chr(cp)), []).append(cp)
    rng = random.Random(17)
    picks = {cps[0] for cps in by_category.values()} | {rng.choice(cps) for cps in by_category.values()}
    assert len(by_category) == 30  # every category, Cn and Cs included
    return [chr(cp) for cp in sorted(picks)]


SPECIALS = ["\x00", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0010ffff",
            "\ud800", "\udfff", "\u0301", "\u200f", "\u202e", "\u061c",  # C0, C1, non-characters, marks
            "a" * 5000, "中" * 3000, "1" * 70_000]  # fmt: skip


def string_fields(verb: str) -> list[str]:
    """The str-typed fields of a verb's model (plus the hand-over dict's keys and values)."""
    out = []
    for name, info in VERBS[verb].model_fields.items():
        text = str(info.annotation)
        if name == "handover":
            out += ["handover.key", "handover.value"]
        elif "str" in text or typing.get_origin(info.annotation) is typing.Literal or "Literal" in text:
            out.append(name)
    return out


def pattern_of(verb: str, field: str) -> tuple[str | None, tuple[str, ...]]:
    """(documented pattern, allowed literal values) of a field."""
    info = VERBS[verb].model_fields.get(field)
    literals = tuple(a for a in typing.get_args(info.annotation) if isinstance(a, str)) if info else ()
    if info is not None and "Literal" in str(info.annotation):
        args = [typing.get_args(a) for a in typing.get_args(info.annotation)] or [typing.get_args(info.annotation)]
        literals = tuple(v for group in args for v in group if isinstance(v, str)) or literals
        return None, literals
    return FIELD_PATTERNS.get(f"{field}@{verb}") or FIELD_PATTERNS[field], ()


def valid(verb: str, field: str, value: str) -> bool:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return False  # not even JSON for orjson (lone surrogates)
    pattern, literals = pattern_of(verb, field)
    if pattern is None:
        return value in literals
    fits = len(value) <= MAX_LENGTH.get(field, 10**6)
    return fits and re.fullmatch(pattern.rstrip("$").lstrip("^"), value) is not None


def body_with(verb: str, field: str, value: str) -> bytes:
    body = {k: v for k, v in BASE[verb].items() if v is not None}
    if field == "handover.key":
        body["handover"] = {value: "v"}
    elif field == "handover.value":
        body["handover"] = {"k": value}
    else:
        body[field] = value
    return json.dumps(body, ensure_ascii=True).encode()  # lone surrogates as escaped JSON


@pytest.fixture
async def bus_lab(tmp_path: Path) -> Any:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as broker:
        mqtt = {"host": broker.host, "port": broker.port, "site": "lab", "outbox_path": str(tmp_path / "outbox.db"),
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "delivery_stall_s": 0.5}  # fmt: skip
        async with open_lab(tmp_path, mqtt) as lab:
            assert lab.app.publisher is not None and lab.app.command_server is not None
            async with asyncio.timeout(10):
                await lab.app.publisher.wait_connected()
                await lab.app.command_server.wait_subscribed()
            yield lab, broker


async def test_every_unicode_category_in_every_string_field_of_every_verb(bus_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = bus_lab
    samples = category_samples() + SPECIALS
    cases: list[tuple[str, str, str]] = [
        (verb, field, value) for verb in VERBS for field in string_fields(verb) for value in samples
    ]
    assert {v for v, _, _ in cases} == set(VERBS) and len(cases) > 2000
    replies: dict[int, dict[str, Any]] = {}
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=30) as client:
        await client.subscribe("fuzz/replies", qos=1)
        await client.subscribe("callbridge/lab/calls/probe.1", qos=1)
        probe = asyncio.Event()

        async def pump() -> None:
            async for m in client.messages:
                if m.topic.value == "fuzz/replies":
                    corr = m.properties.CorrelationData  # type: ignore[union-attr]
                    replies[int(corr)] = orjson.loads(bytes(m.payload))  # type: ignore[arg-type]
                else:
                    probe.set()

        task = asyncio.create_task(pump())
        for i, (verb, field, value) in enumerate(cases):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = "fuzz/replies"
            props.CorrelationData = str(i).encode()
            await client.publish(f"callbridge/lab/cmd/{verb}", body_with(verb, field, value), qos=1, properties=props)
        await lab.until(lambda: len(replies) == len(cases), 180, label="a reply to every command")
        # delivery still goes on: a command's events reach a subscriber of its call topic
        await client.publish("callbridge/lab/cmd/transfer", orjson.dumps(
            {"call_id": "probe.1", "agent": "agent1001", "to_hotline": "110"}), qos=1)  # fmt: skip
        async with asyncio.timeout(10):
            await probe.wait()
        task.cancel()
    wrong = []
    for i, (verb, field, value) in enumerate(cases):
        reply = replies[i]
        code = reply.get("error", {}).get("code")
        if not valid(verb, field, value):
            expected = "too_large" if len(body_with(verb, field, value)) > MAX_COMMAND_BYTES else None
            if reply["ok"] or code not in ((expected,) if expected else ("invalid", "bad_json")):
                wrong.append((verb, field, ascii(value[:20]), reply))
        elif code in ("invalid", "bad_json"):  # the documented alphabet admits it: the daemon must too
            wrong.append((verb, field, ascii(value[:20]), reply))
    assert not wrong, wrong[:10]
    publisher = lab.app.publisher
    assert publisher is not None
    assert publisher.connections == 1 and publisher.outbox.dead_letters == 0  # the broker never dropped us
    # Ready again once the outbox has drained: with a 0.5 s stall bound, a loaded machine can hold the last
    # acknowledgements back for a moment (a stall, rightly reported); a row that blocked delivery would keep
    # readiness false for good and fail here, with the readiness document in the message.
    try:
        await lab.until(lambda: lab.app.readiness()["ready"], 30, label="ready once the outbox drains")
    except TimeoutError:
        raise AssertionError(f"not ready 30 s after the last command: {lab.app.readiness()}") from None


async def test_readyz_is_false_while_event_delivery_is_stalled(bus_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = bus_lab
    assert lab.app.readiness()["ready"] is True
    broker.stop()
    caller = lab.sim.place_call("13700000011", "12345")  # events keep coming; the broker is gone
    await lab.until(lambda: lab.app.publisher is not None and lab.app.publisher.outbox.depth > 0)

    def not_ready() -> dict[str, Any] | None:
        state = lab.app.readiness()
        return None if state["ready"] else state

    state = await lab.until(not_ready, 5)
    assert state["ami"] is True and state["delivery"]["stalled"] is True
    broker.start()
    await lab.until(lambda: lab.app.readiness()["ready"], 15, label="ready again once delivery moves")
    lab.sim.hangup(caller.name)
