"""Commands reach the engine typed: each verb's route pairs the bus's own model with the method serving it.

The routes are checked three ways: every route takes the bus's model of its verb (so a body the bus
validated is what the method gets), a body of another model is refused, and mypy refuses a route whose
method reads a field the model lacks — the check that replaced ``Any`` bodies and verb strings.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from callbridge.bus.command_models import VERBS
from callbridge.bus.commands import Command
from callbridge.bus.principals import ROLES, Principal
from callbridge.errors import CommandError
from callbridge.runtime.engine_commands import Route, engine_routes
from callbridge.runtime.engine_service import EngineService
from tests.engine.pbx import Pbx

ROOT = Path(__file__).resolve().parents[2]


class QuietAmi:
    def write_now(self, action: Any) -> Awaitable[object]:
        replied: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        replied.set_result(object())  # a future, not a coroutine: no warning when a test ends before the await
        return replied


def service(reload: Any = None) -> tuple[EngineService, Pbx]:
    pbx = Pbx()
    caller = pbx.call()
    pbx.answer_by(caller)
    pbx.engine.drain()
    return EngineService(pbx.engine, pbx.tracker, QuietAmi(), [], clock=lambda: pbx.now, reload=reload), pbx


def command(verb: str, hotlines: frozenset[str] | None = None, **body: Any) -> Command:
    return Command(verb, VERBS[verb].model_validate(body), 0.0, principal=Principal("k1", ROLES, hotlines))


def test_every_route_takes_the_bus_model_of_its_verb() -> None:
    routes = engine_routes(Pbx().engine).table
    assert routes, "no routes"
    assert {verb: route.model for verb, route in routes.items()} == {verb: VERBS[verb] for verb in routes}


async def test_a_verb_without_a_route_and_a_body_of_another_verb_are_refused() -> None:
    routes = engine_routes(Pbx().engine)
    with pytest.raises(CommandError) as unknown:
        await routes.dispatch("no_such_verb", VERBS["status"].model_validate({}), None, 0.0)
    assert unknown.value.code == "unknown_verb"
    with pytest.raises(CommandError) as mismatched:
        await routes.dispatch("leave", VERBS["status"].model_validate({}), None, 0.0)
    assert mismatched.value.code == "invalid"


async def test_a_verb_served_beside_the_engine_is_one_more_route() -> None:
    routes = engine_routes(Pbx().engine)
    seen: list[tuple[Any, Any]] = []

    def feedback(body: Any, scope: Any, now: float) -> dict[str, Any]:
        seen.append((body, scope))
        return {"ok": True}

    model = VERBS["status"]  # any bus model: the route pairs it with the method serving it
    routes.add("status_beside", Route(model, feedback))
    body = model.model_validate({})
    assert await routes.dispatch("status_beside", body, frozenset({"110"}), 0.0) == {"ok": True}
    assert seen == [(body, frozenset({"110"}))]
    with pytest.raises(ValueError, match="already has a route"):
        routes.add("status", Route(model, feedback))


async def test_a_transfer_without_mode_takes_the_rules_and_three_way_needs_a_destination() -> None:
    svc, _pbx = service()
    reply = await svc.handle(command("transfer", call_id="c1", agent="agent1001", to_hotline="120",
                                     category="medical"))  # fmt: skip
    assert reply["mode"] == "threeway"  # r-12345-120-threeway's mode, not the schema's "blind"
    with pytest.raises(CommandError) as refused:
        await svc.handle(command("three_way", call_id="c1", agent="agent1001"))
    assert refused.value.code == "invalid"


async def test_a_scoped_key_acts_for_its_hotlines_only() -> None:
    svc, _pbx = service(reload=lambda reason: _reloaded(reason))
    other = frozenset({"110"})
    for cmd in (command("set_priority", other, call_id="c1", agent="agent1001", priority=5),
                command("set_mode", other, mode="emergency"), command("reload", other),
                command("status", other, hotline="12345"),
                command("transfer", other, call_id="c1", agent="agent1001", to_hotline="110")):  # fmt: skip
        with pytest.raises(CommandError) as refused:
            await svc.handle(cmd)
        assert refused.value.code == "forbidden", cmd.verb
    started = await svc.handle(command("transfer", frozenset({"12345"}), call_id="c1", agent="agent1001",
                                       to_hotline="110"))  # fmt: skip
    with pytest.raises(CommandError) as refused:  # the transfer is 12345's: a 110 key may not cancel it
        await svc.handle(command("cancel", other, call_id="c1", agent="agent1001"))
    assert refused.value.code == "forbidden"
    seen = await svc.handle(command("status", other))
    assert seen["transfers"] == [t for t in seen["transfers"] if "110" in (t["from_hotline"], t["to_hotline"])]
    assert [t["transfer_id"] for t in seen["transfers"]] == [started["transfer_id"]]  # 12345 → 110 concerns 110
    assert (await svc.handle(command("reload")))["reloaded"] is True
    await svc.idle()


async def _reloaded(reason: str) -> dict[str, Any]:
    return {"reloaded": True, "reason": reason}


@pytest.mark.slow
def test_mypy_refuses_a_route_whose_method_does_not_fit_the_model(tmp_path: Path) -> None:
    probe = tmp_path / "route_probe.py"
    probe.write_text(textwrap.dedent("""
        from callbridge.bus.command_models import LeaveCommand, StatusCommand
        from callbridge.engine.commands import EngineCommands
        from callbridge.runtime.engine_commands import Route

        def routes(cmds: EngineCommands) -> object:
            fits = Route(LeaveCommand, cmds.leave)
            wrong = Route(StatusCommand, cmds.leave)  # a status body has no agent: mypy must refuse it
            return fits, wrong
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
                           str(probe)], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "route_probe.py:8:" in errors[0], done.stdout
