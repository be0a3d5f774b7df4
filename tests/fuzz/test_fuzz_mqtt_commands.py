"""Bounded fuzzing of MQTT commands: random bytes and random JSON into parsing, validation and signatures.

Whatever arrives on ``callbridge/<site>/cmd/<verb>`` — bytes that are no JSON, invalid UTF-8, JSON of any
shape, objects with the verbs' own field names holding values of every type and Unicode category, signed
and unsigned, with any response topic — the command processor answers with either a typed refusal (a
stable error code, never ``internal_error``) or hands the handler a valid command of the verb's model,
whose identifiers are safe to put in a topic. It never raises, and its reply goes to a topic the broker
accepts. Hypothesis is derandomised with a bounded number of examples, so CI runs the same inputs every time.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbridge.bus import idents
from callbridge.bus.commands import VERBS, Command, CommandProcessor, IncomingCommand, sign
from callbridge.bus.topics import Topics

TOPICS = Topics("lab")
SECRET = b"fuzz-secret"
FUZZ = settings(derandomize=True, max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
#: every refusal a malformed or unauthorised command may get before the handler (commands.py's module doc)
REFUSALS = {"bad_json", "too_large", "invalid", "unknown_verb", "unauthorised", "bad_signature", "forbidden"}
#: fields that become a topic level (events of the call, of the hotline, the reply topic)
TOPIC_FIELDS = {"call_id", "to_hotline", "hotline", "reply_to"}
UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


class Recorder:
    """The engine's place: records what passed validation."""

    def __init__(self) -> None:
        self.seen: list[Command] = []

    async def handle(self, cmd: Command) -> dict[str, Any]:
        self.seen.append(cmd)
        return {"echo": cmd.verb}


#: values that are close to valid for some field, and values that are wrong in every way
_PLAUSIBLE = st.sampled_from([
    "1790000000.17", "pbx1-1790000000.17", "110", "12345", "119", "agent1001", "PJSIP/agent1001", "blind",
    "attended", "threeway", "agent", "supervisor", "ops", "night", "q-110", "police", "JD-2026-0001", "a" * 64,
    "a" * 65, "", " ", "0", "99", 0, 1, 99, 100, 101, -1, 3.5, True, False, None, [], {}, "110\u0085", "1\ufdd0",
    "c/1", "c+1", "#", "$SYS", "中文", "x\uffff", "\U0010fffe", "x\r\nAction: Hangup", "\x00",
])  # fmt: skip
_JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30), _PLAUSIBLE
)
_JSON = st.recursive(_JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                           inner, max_size=4),
                     max_leaves=12)  # fmt: skip
_FIELDS = sorted({name for model in VERBS.values() for name in model.model_fields} | {"sig", "extra", ""})


@st.composite
def bodies(draw: st.DrawFn, verb: str, shapes: tuple[int, int] = (0, 5)) -> bytes:
    """The bytes of a command body: one of several shapes, from noise (0) to nearly valid (4, 5)."""
    shape = draw(st.integers(*shapes))
    if shape == 0:
        return draw(st.binary(max_size=200))
    if shape == 1:
        value = draw(_JSON)
    else:  # an object with the verbs' field names (the required ones of this verb more often)
        model = VERBS.get(verb)
        names = [n for n, f in model.model_fields.items() if f.is_required()] if model is not None else []
        if shape >= 4 and model is not None:  # valid required fields and plausible optional ones: often accepted
            value = draw(st.fixed_dictionaries({n: st.sampled_from(_VALID.get(n, ["x"])) for n in names}))
            optional = sorted(set(model.model_fields) - set(names))
            if optional:
                value.update(draw(st.dictionaries(st.sampled_from(optional), _PLAUSIBLE, max_size=2)))
        else:
            value = {n: draw(_PLAUSIBLE) for n in names if draw(st.integers(0, 5))}
            value.update(draw(st.dictionaries(st.sampled_from(_FIELDS), st.one_of(_PLAUSIBLE, _JSON), max_size=5)))
    if draw(st.booleans()):
        text = json.dumps(value, ensure_ascii=draw(st.booleans()))
        return text.encode("utf-8", errors="surrogatepass")  # a lone surrogate becomes invalid UTF-8
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate: orjson refuses to write it
        return json.dumps(value).encode()


_VALID: dict[str, list[Any]] = {
    "call_id": ["1790000000.17"], "agent": ["agent1001", "PJSIP/agent1001"], "to_hotline": ["110", "12345"],
    "priority": [5, 100], "mode": ["night"],
}  # fmt: skip


@st.composite
def commands(draw: st.DrawFn, nearly_valid: bool = False) -> tuple[IncomingCommand, bool]:
    verb = draw(st.sampled_from(sorted(VERBS))) if draw(st.integers(0, 9)) else draw(st.text(max_size=12))
    payload = draw(bodies(verb, (4, 5) if nearly_valid else (0, 5)))
    signed = draw(st.integers(0, 4))  # 0-1 unsigned, 2-3 a correct MQTT 5 signature, 4 any text
    props: dict[str, str] = {}
    if signed >= 2:
        props["sig"] = sign(SECRET, verb, payload) if signed < 4 else draw(st.text(max_size=70))
    odd_topics = ["desk/1/replies", "callbridge/lab/reply/x", "callbridge/lab/events/110/x", "a/#", "+", "r\u0085"]
    response_topic = draw(st.one_of(st.none(), st.text(max_size=40), st.sampled_from(odd_topics)))
    msg = IncomingCommand(topic=f"{TOPICS.base}/cmd/{verb}", payload=payload, response_topic=response_topic,
                          correlation_data=draw(st.one_of(st.none(), st.binary(max_size=16))),
                          user_properties=props)  # fmt: skip
    return msg, draw(st.booleans())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@FUZZ
@given(commands())
def test_every_command_is_a_typed_refusal_or_a_valid_command(case: tuple[IncomingCommand, bool]) -> None:
    _check(*case)


@settings(FUZZ, max_examples=200)
@given(commands(nearly_valid=True))
def test_nearly_valid_commands_are_accepted_whole_or_refused_typed(case: tuple[IncomingCommand, bool]) -> None:
    """Valid required fields with plausible optional ones (the accepted path, where the first test's noise
    rarely gets): the same answer."""
    _check(*case)


def _check(msg: IncomingCommand, require_signature: bool) -> None:
    handler = Recorder()
    processor = CommandProcessor(handler, TOPICS, secret=SECRET, require_signature=require_signature)
    reply = asyncio.run(processor.process(msg))
    assert reply is not None  # not in broadcast mode: every command gets a reply
    out = orjson.loads(reply.payload)
    assert "+" not in reply.topic and "#" not in reply.topic and idents.broker_safe(reply.topic), reply.topic
    assert reply.topic == msg.response_topic or reply.topic.startswith(f"{TOPICS.base}/reply/")
    if handler.seen:
        [cmd] = handler.seen
        assert out["ok"] is True and out["status"] == "done" and out["result"] == {"echo": cmd.verb}
        model = VERBS[cmd.verb]
        assert type(cmd.body) is model
        assert model.model_validate(orjson.loads(msg.payload)) == cmd.body  # exactly what the body says
        dumped = cmd.body.model_dump()
        for name in TOPIC_FIELDS & dumped.keys():
            assert dumped[name] is None or idents.is_topic_level(dumped[name]), (name, dumped[name])
        assert not [s for s in _strings(dumped) if UNSAFE_TEXT.search(s)]
        assert not require_signature or cmd.signed
    else:
        assert out["ok"] is False and out["status"] == "refused" and out["final"] is True
        assert out["error"]["code"] in REFUSALS, out["error"]
        assert isinstance(out["error"]["message"], str) and out["error"]["message"]


def test_a_signature_with_non_ascii_characters_is_a_bad_signature() -> None:
    """Found by the fuzzer: hmac.compare_digest raised TypeError on such a str (an internal_error reply)."""
    for sig in ("\U0004bd65", "é" * 64, "中"):
        _check(IncomingCommand(topic=f"{TOPICS.base}/cmd/status", payload=b"{}", user_properties={"sig": sig}), False)
        reply = asyncio.run(CommandProcessor(Recorder(), TOPICS, secret=SECRET).process(
            IncomingCommand(topic=f"{TOPICS.base}/cmd/status", payload=b"{}", user_properties={"sig": sig})))
        assert reply is not None and orjson.loads(reply.payload)["error"]["code"] == "bad_signature"
