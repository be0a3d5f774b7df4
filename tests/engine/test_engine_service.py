"""The interpreter: batches in order and stopped at the first failure, outcomes fed back, timers fired."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from callbridge.ami.actions import Action, Redirect, Setvar
from callbridge.bus.commands import VERBS, Command
from callbridge.engine.effects import ActionResult, SendActions, StartTimer
from callbridge.errors import AmiActionError, AmiConnectionLost, AmiOutcomeUnknown, CommandError
from callbridge.runtime.engine_service import EngineService
from tests.engine.pbx import Pbx


class FakeAmi:
    def __init__(self, fail_on: str | None = None, error: Exception | None = None) -> None:
        self.sent: list[Action] = []
        self.fail_on, self.error = fail_on, error

    def write_now(self, action: Action) -> Awaitable[object]:
        return self.reply(action)  # a failure comes with the reply, as AmiActionError does

    async def reply(self, action: Action) -> object:
        await asyncio.sleep(0)
        if action.name == self.fail_on and self.error is not None:
            raise self.error
        self.sent.append(action)
        return object()


def service(ami: FakeAmi) -> tuple[EngineService, Pbx, list[Any]]:
    pbx = Pbx()
    caller = pbx.call()
    pbx.answer_by(caller)
    pbx.engine.drain()
    published: list[Any] = []
    return EngineService(pbx.engine, pbx.tracker, ami, [published.extend], clock=lambda: pbx.now), pbx, published


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (AmiActionError("Redirect", "Channel not found"), "failed"),
        (AmiOutcomeUnknown("Redirect", "a-1"), "unknown"),
        (AmiConnectionLost("down"), "unavailable"),
    ],
)
async def test_batches_run_in_order_and_report_their_outcome(error: Exception | None, outcome: str) -> None:
    ami = FakeAmi("Redirect", error)
    svc, pbx, _ = service(ami)
    results: list[ActionResult] = []
    original = pbx.engine.on_action_result

    def record(r: ActionResult, now: float) -> None:
        results.append(r)
        original(r, now)

    pbx.engine.on_action_result = record  # type: ignore[method-assign,assignment]
    pbx.engine.effects.extend([SendActions((Setvar(channel="c", variable="A", value="1"),
                                            Redirect(channel="c", context="cb-to-110", exten="s"),
                                            Setvar(channel="c", variable="B", value="2")), "t")])  # fmt: skip
    svc.run_effects()
    await svc.idle()
    assert [r.outcome for r in results] == [outcome]
    expected = ["Setvar", "Redirect", "Setvar"] if error is None else ["Setvar"]
    assert [a.name for a in ami.sent] == expected  # nothing after a failure is sent


async def test_timers_fire_into_the_engine() -> None:
    svc, pbx, _ = service(FakeAmi())
    fired: list[str] = []
    done = asyncio.Event()

    def on_timer(key: str, now: float) -> None:
        fired.append(key)
        done.set()

    pbx.engine.on_timer = on_timer  # type: ignore[method-assign]
    pbx.engine.effects.extend([StartTimer("k", 0.01)])
    svc.run_effects()
    async with asyncio.timeout(2):
        await done.wait()
    assert fired == ["k"]


async def test_commands_go_through_the_engine_and_refusals_are_events() -> None:
    svc, _pbx, published = service(FakeAmi())
    reply = await svc.handle(Command("transfer", VERBS["transfer"].model_validate(
        {"call_id": "c1", "agent": "agent1001", "to_hotline": "110", "category": "police"}), 0.0))  # fmt: skip
    assert reply["state"] == "sending" and reply["to_hotline"] == "110"
    with pytest.raises(CommandError) as refused:
        await svc.handle(Command("leave", VERBS["leave"].model_validate({"call_id": "c1", "agent": "agent1001"}), 0.0))
    assert refused.value.code == "wrong_mode"
    outcomes = [(e.verb, e.outcome) for e in published if e.TYPE == "command.received"]
    assert outcomes == [("transfer", "ok"), ("leave", "wrong_mode")]
    status = await svc.handle(Command("status", VERBS["status"].model_validate({}), 0.0))
    assert status["mode"] == "normal" and len(status["transfers"]) == 1
    await svc.idle()
