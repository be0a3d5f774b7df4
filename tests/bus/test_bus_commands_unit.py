"""The command processor without a broker: validation, error codes, signatures, reply routing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.bus.command_models import TransferCommand
from callbridge.bus.commands import (
    VERBS,
    Command,
    CommandProcessor,
    IncomingCommand,
    canonical_body,
    sign,
)
from callbridge.bus.topics import Topics
from callbridge.errors import CommandError

TOPICS = Topics("lab")
SECRET = b"shared-secret"


class RecordingHandler:
    def __init__(self, result: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.seen: list[Command] = []
        self.result = result or {"transfer_id": "x1"}
        self.error = error

    async def handle(self, cmd: Command) -> dict[str, Any]:
        self.seen.append(cmd)
        if self.error is not None:
            raise self.error
        return self.result


TRANSFER = {"call_id": "1700.1", "agent": "agent1001", "to_hotline": "110", "mode": "blind", "category": "theft"}


def incoming(verb: str, body: Any, **kw: Any) -> IncomingCommand:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return IncomingCommand(topic=TOPICS.command(verb), payload=payload, **kw)


async def run(proc: CommandProcessor, msg: IncomingCommand) -> tuple[str, dict[str, Any], bytes | None]:
    reply = await proc.process(msg)
    assert reply is not None
    return reply.topic, orjson.loads(reply.payload), reply.correlation_data


async def test_valid_transfer_reaches_handler_and_replies_on_the_response_topic() -> None:
    handler = RecordingHandler()
    proc = CommandProcessor(handler, TOPICS)
    topic, body, corr = await run(
        proc, incoming("transfer", TRANSFER, response_topic="desk/12345/replies", correlation_data=b"\x01req")
    )
    assert (topic, corr) == ("desk/12345/replies", b"\x01req")
    assert body == {"ok": True, "verb": "transfer", "status": "done", "final": True, "result": {"transfer_id": "x1"}}
    [cmd] = handler.seen
    assert isinstance(cmd.body, TransferCommand) and cmd.body.to_hotline == "110" and not cmd.signed


@pytest.mark.parametrize(
    ("verb", "payload", "code"),
    [
        ("transfer", b"{not json", "bad_json"),
        ("transfer", b"[1, 2]", "bad_json"),
        ("transfer", b"x" * (70 * 1024), "too_large"),
        ("teleport", orjson.dumps(TRANSFER), "unknown_verb"),
        ("transfer", orjson.dumps({**TRANSFER, "mode": "shout"}), "invalid"),
        ("transfer", orjson.dumps({k: v for k, v in TRANSFER.items() if k != "agent"}), "invalid"),
        ("transfer", orjson.dumps({**TRANSFER, "extra": 1}), "invalid"),
        ("transfer", orjson.dumps({**TRANSFER, "agent": "a\r\nAction: Hangup"}), "invalid"),
        ("set_mode", orjson.dumps({"mode": ""}), "invalid"),
    ],
)
async def test_malformed_commands_are_refused_with_stable_codes_and_never_reach_the_handler(
    verb: str, payload: bytes, code: str
) -> None:
    handler = RecordingHandler()
    proc = CommandProcessor(handler, TOPICS)
    topic, body, _ = await run(proc, incoming(verb, payload))
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    assert topic == "callbridge/lab/reply/default"
    assert handler.seen == []
    assert proc.rejected == 1


async def test_invalid_reply_lists_the_fields() -> None:
    _, body, _ = await run(CommandProcessor(RecordingHandler(), TOPICS), incoming("transfer", {"call_id": "1"}))
    locs = {d["loc"] for d in body["error"]["details"]}
    assert {"agent", "to_hotline"} <= locs


async def test_mqtt311_fallback_reply_topic_and_correlation_id() -> None:
    body_in = {**TRANSFER, "reply_to": "desk-7", "correlation_id": "c-42"}
    topic, body, corr = await run(CommandProcessor(RecordingHandler(), TOPICS), incoming("transfer", body_in))
    assert topic == "callbridge/lab/reply/desk-7"
    assert body["correlation_id"] == "c-42" and corr is None
    # the fallback also serves refusals after the body parsed
    topic, body, _ = await run(CommandProcessor(RecordingHandler(), TOPICS), incoming("teleport", body_in))
    assert topic == "callbridge/lab/reply/desk-7" and body["correlation_id"] == "c-42"


@pytest.mark.parametrize(
    "response_topic", ["callbridge/lab/cmd/transfer", "callbridge/lab/events/110/x", "a/+/b", "a/#"]
)
async def test_unsafe_response_topics_fall_back_to_the_reply_topic(response_topic: str) -> None:
    topic, _, _ = await run(
        CommandProcessor(RecordingHandler(), TOPICS), incoming("status", {}, response_topic=response_topic)
    )
    assert topic == "callbridge/lab/reply/default"


async def test_handler_refusal_and_crash_become_error_replies() -> None:
    refuse = RecordingHandler(error=CommandError("unauthorised", "agent1001 is not party to call 1700.1"))
    _, body, _ = await run(CommandProcessor(refuse, TOPICS), incoming("transfer", TRANSFER))
    assert body["error"] == {"code": "unauthorised", "message": "agent1001 is not party to call 1700.1"}
    crash = CommandProcessor(RecordingHandler(error=ZeroDivisionError()), TOPICS)
    _, body, _ = await run(crash, incoming("transfer", TRANSFER))
    assert body["error"]["code"] == "internal_error"
    _, body, _ = await run(crash, incoming("transfer", TRANSFER))  # still serving
    assert crash.rejected == 2


async def test_not_on_this_pbx_replies_when_shared_and_stays_silent_in_broadcast_mode() -> None:
    elsewhere = CommandError("not_on_this_pbx", "call 1700.1 is not on this PBX")
    ok_body = {"call_id": "1700.1", "agent": "agent1001"}
    _, body, _ = await run(CommandProcessor(RecordingHandler(error=elsewhere), TOPICS), incoming("complete", ok_body))
    assert body["error"]["code"] == "not_on_this_pbx"
    silent = CommandProcessor(RecordingHandler(error=elsewhere), TOPICS, broadcast=True)
    assert await silent.process(incoming("complete", ok_body)) is None


async def test_signatures_in_user_property_and_in_body() -> None:
    handler = RecordingHandler()
    proc = CommandProcessor(handler, TOPICS, secret=SECRET, require_signature=True)
    raw = orjson.dumps(TRANSFER)
    good = sign(SECRET, "transfer", raw)
    _, body, _ = await run(proc, incoming("transfer", raw, user_properties={"sig": good}))
    assert body["ok"] is True and handler.seen[-1].signed
    # MQTT 3.1.1: sig in the body, over the canonical JSON without it
    body_311 = {**TRANSFER, "reply_to": "d"}
    body_311["sig"] = sign(SECRET, "transfer", canonical_body(body_311))
    _, body, _ = await run(proc, incoming("transfer", body_311))
    assert body["ok"] is True
    # the same signature does not authorise another verb
    _, body, _ = await run(proc, incoming("cancel", raw, user_properties={"sig": good}))
    assert body["error"]["code"] == "bad_signature"
    tampered = orjson.dumps({**TRANSFER, "to_hotline": "119"})
    _, body, _ = await run(proc, incoming("transfer", tampered, user_properties={"sig": good}))
    assert body["error"]["code"] == "bad_signature"
    _, body, _ = await run(proc, incoming("transfer", raw))
    assert body["error"]["code"] == "unauthorised"
    assert len(handler.seen) == 2


def test_every_verb_has_a_model_with_a_json_schema() -> None:
    assert set(VERBS) >= {"transfer", "complete", "cancel", "three_way", "leave", "set_mode", "reload", "status"}
    for model in VERBS.values():
        assert model.model_json_schema()["type"] == "object"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([*VERBS, "nope"]))
async def test_arbitrary_bytes_never_reach_the_handler_unvalidated_and_always_get_a_reply(
    payload: bytes, verb: str
) -> None:
    handler = RecordingHandler()
    reply = await CommandProcessor(handler, TOPICS).process(incoming(verb, payload))
    assert reply is not None
    body = orjson.loads(reply.payload)
    assert body["ok"] is (len(handler.seen) == 1)
    if not body["ok"]:
        assert isinstance(body["error"]["code"], str)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"call_id": "1700.1", "agent": "agent1001", "priority": 50}, True),
        ({"call_id": "1700.1", "agent": "PJSIP/agent1001", "priority": 0, "reason": "elderly caller"}, True),
        ({"call_id": "1700.1", "agent": "agent1001", "priority": 101}, False),
        ({"call_id": "1700.1", "agent": "agent1001", "priority": -1}, False),
        ({"call_id": "1700.1", "priority": 10}, False),  # who asks is required
        ({"call_id": "1700.1", "agent": "agent1001", "priority": "high"}, False),
    ],
)
async def test_set_priority_is_a_verb_with_a_bounded_priority(body: dict[str, Any], ok: bool) -> None:
    handler = RecordingHandler(result={"queue": "q-12345", "priority": 50})
    _, reply, _ = await run(CommandProcessor(handler, TOPICS), incoming("set_priority", body))
    assert reply["ok"] is ok
    if ok:
        assert handler.seen[0].body.priority == body["priority"]  # type: ignore[attr-defined]
    else:
        assert reply["error"]["code"] == "invalid" and not handler.seen
