"""The engine: call-control decisions (pure: no asyncio, no I/O). Its interpreter is :mod:`callbridge.runtime`.

Public API::

    from callbridge.engine.core import Engine, TransferRequest, hotline_of
    engine = Engine(plan, tracker)                 # tracker: callbridge.calls.tracker.CallTracker
    engine.on_ami_event(ev, tracker.feed(ev), now) # then engine.drain() -> list[Effect]
    engine.request_transfer(TransferRequest(...), now) -> dict   # raises CommandError (code, message)
    engine.complete / cancel / leave / set_mode / set_priority / swap_dialplan / status
    engine.transfers                               # the registry: transfer id -> Transfer

    from callbridge.engine.effects import SendActions, Publish, Log, StartTimer, CancelTimer, ActionResult
    from callbridge.engine.requests import TransferRequest, prepare_transfer   # authorised + actions checked once
    from callbridge.engine.commands import EngineCommands   # the verbs, typed by body protocols
    from callbridge.engine import events                  # transfer.* / threeway.* / queue.* … events

    from callbridge.runtime.engine_service import EngineService   # asyncio interpreter + bus CommandHandler

Inside, :class:`~callbridge.engine.core.Engine` is a façade wiring separate parts that write to one
:class:`~callbridge.engine.effects.EffectSink` (see :mod:`callbridge.engine.core`).
"""
