"""The bus's commands routed to the engine: one route per verb, pairing the verb's command model with the
method that serves it (:class:`callbridge.engine.commands.EngineCommands`).

The pairing is where mypy checks a verb: a route's method takes the body protocol its model must satisfy,
so a field a method reads that the model lacks (or types otherwise) is a type error here. A new verb is a
model in :mod:`callbridge.bus.command_models`, a method on the engine side and one line in
:func:`engine_routes`. ``reload`` is served by the composition root (it reads files), the rest by the
engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from callbridge.bus.command_models import (
    CancelCommand,
    CommandBody,
    CompleteCommand,
    LeaveCommand,
    NuisanceReleaseCommand,
    OverflowNowCommand,
    ReloadCommand,
    SetModeCommand,
    SetPriorityCommand,
    StatusCommand,
    ThreeWayCommand,
    TransferCommand,
)
from callbridge.engine.commands import EngineCommands, Result, Scope
from callbridge.engine.core import Engine
from callbridge.engine.requests import check_scope
from callbridge.errors import CommandError

ReloadFn = Callable[[str], Awaitable[dict[str, Any]]]

B = TypeVar("B", bound=CommandBody)


@dataclass(frozen=True, slots=True)
class Route(Generic[B]):
    """``model``: the bus's model of the verb's body; ``run(body, scope, now)`` serves it."""

    model: type[B]
    run: Callable[[B, Scope, float], Result | Awaitable[Result]]


class Routes:
    """Verb → route; :meth:`dispatch` serves one command."""

    __slots__ = ("table",)

    def __init__(self, table: Mapping[str, Route[Any]]) -> None:
        self.table = dict(table)

    def add(self, verb: str, route: Route[Any]) -> None:
        """Serve one more verb (e.g. one the composition root answers beside the engine)."""
        if verb in self.table:
            raise ValueError(f"verb {verb!r} already has a route")
        self.table[verb] = route

    async def dispatch(self, verb: str, body: CommandBody, scope: Scope, now: float) -> Result:
        route = self.table.get(verb)
        if route is None:
            raise CommandError("unknown_verb", f"unknown verb {verb!r}")
        if not isinstance(body, route.model):
            raise CommandError("invalid", f"{verb} takes a {route.model.__name__}, not a {type(body).__name__}")
        result = route.run(body, scope, now)
        return await result if inspect.isawaitable(result) else result


def engine_routes(engine: Engine, reload: ReloadFn | None = None) -> Routes:
    cmds = EngineCommands(engine)
    return Routes({
        "transfer": Route(TransferCommand, cmds.transfer),
        "three_way": Route(ThreeWayCommand, cmds.three_way),
        "complete": Route(CompleteCommand, cmds.complete),
        "cancel": Route(CancelCommand, cmds.cancel),
        "leave": Route(LeaveCommand, cmds.leave),
        "set_priority": Route(SetPriorityCommand, cmds.set_priority),
        "set_mode": Route(SetModeCommand, cmds.set_mode),
        "status": Route(StatusCommand, cmds.status),
        "nuisance_release": Route(NuisanceReleaseCommand, cmds.nuisance_release),
        "overflow_now": Route(OverflowNowCommand, cmds.overflow_now),
        "reload": Route(ReloadCommand, Reloader(reload)),
    })  # fmt: skip


class Reloader:
    """``reload``: the composition root's dialplan reload, for an unscoped key (site-wide)."""

    __slots__ = ("_reload",)

    def __init__(self, reload: ReloadFn | None) -> None:
        self._reload = reload

    async def __call__(self, body: ReloadCommand, scope: Scope, now: float) -> Result:
        check_scope(scope, None, "reload")
        if self._reload is None:
            raise CommandError("unsupported", "reload is not available in this process")
        return await self._reload("command")
