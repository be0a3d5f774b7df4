"""``overflow_now``: a supervisor sends a queue's waiting callers to the remote seats by hand (pure engine).

The queue's hotline must be in the key's scope, the queue must exist and have an overflow rule; the rule
starts with reason ``manual`` (the entry-routing global set) once, a second press only withdraws; the
watch then ends it as it ends any overflow. The e2e test (tests/web/test_console_e2e.py) sees the
callers answered at the remote seats.
"""

from __future__ import annotations

import pytest

from callbridge.ami.actions import Setvar
from callbridge.bus.command_models import OverflowNowCommand
from callbridge.engine import events as ev
from callbridge.errors import CommandError
from callbridge.runtime.engine_commands import engine_routes
from tests.engine.pbx import Pbx


async def send(pbx: Pbx, queue: str, scope: frozenset[str] | None = None) -> dict[str, object]:
    body = OverflowNowCommand.model_validate({"queue": queue, "role": "supervisor", "agent": "PJSIP/agent2191"})
    result = await engine_routes(pbx.engine).dispatch("overflow_now", body, scope, pbx.now)
    pbx.effects += pbx.engine.drain()
    return dict(result)


@pytest.mark.parametrize(("queue", "scope", "code"), [
    ("q-nowhere", None, "unknown_queue"),
    ("q-119", None, "no_rule"),  # 119 has no overflow to remote seats
    ("q-12345", frozenset({"110"}), "forbidden"),  # a 110 supervisor may not empty the 12345 queue
])  # fmt: skip
async def test_refused_without_a_queue_a_rule_or_the_scope(queue: str, scope: frozenset[str] | None,
                                                          code: str) -> None:  # fmt: skip
    pbx = Pbx()
    with pytest.raises(CommandError) as refused:
        await send(pbx, queue, scope)
    assert refused.value.code == code
    assert not [e for e in pbx.published() if isinstance(e, ev.QueueOverflowStarted)]
    assert not pbx.sent()


async def test_starts_the_queues_rule_by_hand_once() -> None:
    pbx = Pbx()
    first = await send(pbx, "q-12345", frozenset({"12345"}))
    assert first == {"queue": "q-12345", "overflow": "of-12345-remote", "target": "q-12345-remote",
                     "withdrawn": 0, "started": True}  # fmt: skip
    started = [e for e in pbx.published() if isinstance(e, ev.QueueOverflowStarted)]
    assert [(e.queue, e.reason, e.hotline, e.target) for e in started] == [
        ("q-12345", "manual", "12345", "q-12345-remote")]  # fmt: skip
    sets = [a for s in pbx.sent() for a in s.actions if isinstance(a, Setvar)]
    assert [(a.variable, a.value) for a in sets] == [("CB_OVERFLOW_12345", "of-12345-remote")]
    assert pbx.engine.overflow.active == ["of-12345-remote"]
    pbx.take()
    again = await send(pbx, "q-12345")
    assert again["started"] is False and again["withdrawn"] == 0
    assert not [e for e in pbx.published() if isinstance(e, ev.QueueOverflowStarted)]
