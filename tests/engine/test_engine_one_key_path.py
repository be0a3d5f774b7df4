"""The one-key path: the first AMI action is written before log lines are rendered or events handed over.

Issue 8 budgets DTMF arrival → first AMI action written at p99 < 2 ms (bench/latency.py measures it);
these tests pin the order of the work that makes that possible, not its timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from callbridge.ami.actions import Originate, Redirect, Setvar
from callbridge.ami.decode import decode_headers
from callbridge.ami.event_types import AmiEvent
from callbridge.domain import DomainEvent
from callbridge.engine import transfer as tx
from callbridge.engine.core import TransferRequest
from callbridge.engine.effects import Log, Publish, SendActions
from callbridge.engine.events import TransferRequested
from callbridge.errors import AmiConnectionLost, CommandError, UnsafeValueError
from callbridge.runtime.engine_service import EngineService
from tests.engine.pbx import Chan, Pbx

TIMEOUT = 5.0
DEFERRED = ("dtmf.code", "transfer.transition")


class WriteRecordingAmi:
    """Records each action the moment it is written (before any await), with the log lines, sink batches
    and calls the tracker knew at that moment."""

    def __init__(self, batches: list[list[DomainEvent]], fail: bool = False) -> None:
        self.logs: Sequence[Mapping[str, Any]] = []  # capture_logs() output, when a test captures
        self.batches, self.fail = batches, fail
        self.calls: Callable[[], int] = lambda: 0  # how many calls the tracker knows
        self.writes: list[tuple[str, list[str], int, int]] = []  # (action, log events, sink calls, calls)
        self.replied = asyncio.Event()

    def write_now(self, action: Any) -> Awaitable[object]:
        if self.fail:
            raise AmiConnectionLost(f"{action.name}: not connected")
        self.writes.append((action.name, [e["event"] for e in self.logs], len(self.batches), self.calls()))
        return self.reply()

    async def reply(self) -> object:
        await asyncio.sleep(0)
        self.replied.set()
        return object()


def one_key_setup(fail: bool = False) -> tuple[EngineService, Pbx, Chan, WriteRecordingAmi, list[list[DomainEvent]]]:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    batches: list[list[DomainEvent]] = []

    def sink(events: Sequence[DomainEvent]) -> None:
        batches.append(list(events))

    ami = WriteRecordingAmi(batches, fail)
    ami.calls = lambda: len(pbx.tracker.calls)
    svc = EngineService(pbx.engine, pbx.tracker, ami, [sink], clock=lambda: pbx.now)
    return svc, pbx, agent, ami, batches


def press_star_one(pbx: Pbx, agent: Chan) -> None:
    pbx.press(agent, "*1")  # r-12345-120-police: blind, number-carrying transfer to 110


def star_one_then_a_new_call(agent: Chan) -> list[AmiEvent]:
    """What one TCP read may carry: the agent's ``*1`` and, right behind it, another citizen's call."""
    events = []
    for digit in "*1":
        for name in ("DTMFBegin", "DTMFEnd"):
            events.append(decode_headers(name, {**agent.headers(), "Digit": digit, "Direction": "Received",
                                                "DurationMs": "100"}))  # fmt: skip
    newcomer = Chan("PJSIP/carrier-000000ff", "c255", "c255", "13900000255")
    return [*events, decode_headers("Newchannel", newcomer.headers(state="Ring"))]


async def test_the_first_action_is_written_before_the_next_item_and_before_logs_and_sinks() -> None:
    svc, pbx, agent, ami, batches = one_key_setup()
    items = star_one_then_a_new_call(agent)

    async def one_read() -> AsyncIterator[list[AmiEvent]]:
        yield items

    calls_before = len(pbx.tracker.calls)
    with capture_logs() as logs:
        ami.logs = logs
        async with asyncio.timeout(TIMEOUT):
            await svc.consume_batches(one_read())
        # the read's next item (a new call) was tracked after the write; no log line rendered, no sink
        # called before it (the flush is queued behind the batch's first step)
        assert ami.writes[:1] == [("Setvar", [], 0, calls_before)]
        assert len(pbx.tracker.calls) == calls_before + 1
        async with asyncio.timeout(TIMEOUT):
            await ami.replied.wait()
            await svc.idle()
        events = {e["event"]: e for e in reversed(logs) if e["event"] in DEFERRED}  # the first of each
        assert events["dtmf.code"]["code"] == "*1" and events["dtmf.code"]["channel"] == agent.name
        transition = events["transfer.transition"]
        assert (transition["old"], transition["new"], transition["reason"]) == ("requested", "sending", "dtmf")
        assert transition["transfer_id"] == "x1" and transition["to_hotline"] == "110"
        assert "transfer.requested" in [e.TYPE for batch in batches for e in batch]
    assert [name for name, *_ in ami.writes] == ["Setvar"] * 11 + ["Redirect"]


async def test_run_effects_writes_the_first_action_before_it_returns_and_the_flush_comes_after() -> None:
    svc, pbx, agent, ami, batches = one_key_setup()
    with capture_logs() as logs:
        ami.logs = logs
        press_star_one(pbx, agent)
        pbx.engine.effects.extend(pbx.take())  # the decision's effects, as the consumer would run them
        svc.run_effects()
        # written inside run_effects, with no yield: no log line rendered, no sink called before it
        assert ami.writes == [("Setvar", [], 0, 1)]
        assert batches == [] and not [e for e in logs if e["event"] in DEFERRED]
        await asyncio.sleep(0)
        assert batches and "dtmf.code" in [e["event"] for e in logs]  # the flush ran in the next iteration
        async with asyncio.timeout(TIMEOUT):
            await svc.idle()


def test_the_decision_puts_the_batch_before_its_event_and_log_lines() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    press_star_one(pbx, agent)
    effects = [e for e in pbx.take() if isinstance(e, SendActions | Publish | Log)]
    start = next(i for i, e in enumerate(effects) if isinstance(e, SendActions))
    batch, requested, transition = effects[start:]
    assert isinstance(batch, SendActions) and batch.tag == "xfer:x1:start"
    assert isinstance(requested, Publish) and isinstance(requested.event, TransferRequested)
    assert isinstance(transition, Log) and transition.event == "transfer.transition"
    [code_line] = [e for e in effects[:start] if isinstance(e, Log)]
    assert (code_line.event, dict(code_line.fields)) == (
        "dtmf.code",
        {"channel": agent.name, "code": "*1", "call_id": caller.linkedid},
    )


async def test_a_batch_that_fails_in_its_first_step_reports_after_the_decisions_events() -> None:
    # not connected: the AMI client raises before writing anything, in the batch's first step
    svc, pbx, agent, ami, batches = one_key_setup(fail=True)
    press_star_one(pbx, agent)
    pbx.engine.effects.extend(pbx.take())
    svc.run_effects()
    await svc.let_batches_report()  # the batch's first step: AMI is down, it reports at once
    svc.flush()
    types = [e.TYPE for batch in batches for e in batch if e.TYPE.startswith("transfer.")]
    assert types[0] == "transfer.requested" and len(types) >= 2  # the outcome follows the request
    assert ami.writes == [] and pbx.engine.transfers["x1"].state is not tx.TState.SENDING
    async with asyncio.timeout(TIMEOUT):
        await svc.idle()


@pytest.mark.parametrize(
    "value", ["ok", "", "张三 工单#12", "tab\tinside", "a\r\nAction: Hangup", "nul\x00", "lf\n", "del\x7f"]
)
@pytest.mark.parametrize("field", ["channel", "variable", "value"])
def test_the_setvar_check_refuses_exactly_what_rendering_refuses(field: str, value: str) -> None:
    action = Setvar(**{"channel": "PJSIP/c-1", "variable": "__CB_TICKET", "value": "1", field: value})
    try:
        action.to_headers()
    except UnsafeValueError:
        with pytest.raises(UnsafeValueError):
            tx.check_actions((action,))
    else:
        tx.check_actions((action,))


def test_actions_other_than_setvar_are_checked_by_rendering_them() -> None:
    with pytest.raises(UnsafeValueError):
        tx.check_actions((Setvar(variable="A", value="1"), Redirect(channel="c\r\n", context="cb-to-110", exten="s")))
    with pytest.raises(UnsafeValueError):  # the caller id rule of Originate (not a control character)
        tx.check_actions((Originate(channel="PJSIP/110@t", context="cb-conf", exten="r", caller_num='1"<2>'),))


def test_a_three_way_is_refused_when_only_its_later_originate_is_unsafe() -> None:
    # The destination is called in later, but its Originate is checked with the start batch: nothing
    # of a transfer that could not complete is written.
    pbx = Pbx()
    caller = pbx.call(num="139<1>")
    pbx.answer_by(caller)
    pbx.take()
    with pytest.raises(CommandError) as refused:
        pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="120",
                                                    mode="threeway"), pbx.now)  # fmt: skip
    assert refused.value.code == "unsafe_value"
    assert not [e for e in pbx.engine.drain() if isinstance(e, SendActions)]
    blind = pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001",
                                                        to_hotline="110"), pbx.now)  # fmt: skip
    assert blind["state"] == "sending"  # the same number is fine in Setvar values


def test_one_key_codes_follow_the_mode_and_a_swapped_dialplan() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "#4")  # r-12345-110-expert: emergency mode only
    assert pbx.sent() == []
    pbx.engine.set_mode("emergency", pbx.now)
    pbx.press(agent, "#4")
    [batch] = pbx.sent()
    assert pbx.engine.transfers["x1"].rule.id == "r-12345-110-expert" and batch.tag == "xfer:x1:start"
    pbx.take()
    pbx.engine.transfers["x1"].state = tx.TState.FAILED  # done: the call is free for another transfer
    without = pbx.plan.model.model_copy(update={"rules": {k: r for k, r in pbx.plan.model.rules.items()
                                                          if r.code != "#4"}})  # fmt: skip
    pbx.engine.swap_dialplan(type(pbx.plan)(without, pbx.plan.sources), pbx.now)
    pbx.take()
    pbx.press(agent, "#4")
    # not even a code the plan cannot serve (transfer.refused no_rule): "#4" is no code of this plan
    assert pbx.sent() == [] and [e.TYPE for e in pbx.published()] == ["dialplan.reloaded"]
