"""The engine: call-control decisions (pure) and the interpreter that executes them.

Public API::

    from callbridge.engine.runtime import Engine, TransferRequest, hotline_of
    engine = Engine(plan, tracker)                 # tracker: callbridge.calls.tracker.CallTracker
    engine.on_ami_event(ev, tracker.feed(ev), now) # then engine.drain() -> list[Effect]
    engine.request_transfer(TransferRequest(...), now) -> dict   # raises CommandError (code, message)
    engine.complete / cancel / leave / set_mode / set_priority / swap_dialplan / status

    from callbridge.engine.service import EngineService   # asyncio interpreter + bus CommandHandler
    from callbridge.engine.effects import SendActions, Publish, Log, StartTimer, CancelTimer, ActionResult
    from callbridge.engine.requests import TransferRequest, prepare_transfer   # authorised + actions checked once
    from callbridge.engine import events                  # transfer.* / threeway.* / queue.* … events
"""
