"""The runtime side of the pure core: the asyncio interpreter of the engine's effects and its command routes.

:mod:`callbridge.engine` decides and never awaits; :class:`~callbridge.runtime.engine_service.EngineService`
feeds it the AMI stream, executes its effects (AMI actions, events to the sinks, log lines, timers) and
serves the bus's commands through :mod:`~callbridge.runtime.engine_commands`. asyncio (public API only);
no panoramisk, no aiomqtt here.
"""
