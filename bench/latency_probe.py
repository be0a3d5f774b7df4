"""Records when the simulator receives each AMI action (wraps its action handlers; nothing else changes)."""

from __future__ import annotations

import time
from typing import Any

#: Actions that are part of callbridge's transfer (what "the first AMI action" of a transfer can be).
TRANSFER_ACTIONS = ("setvar", "redirect", "blindtransfer", "atxfer", "originate", "hangup", "bridge")


class ActionProbe:
    def __init__(self, sim: Any) -> None:
        self.times: list[float] = []
        for key in TRANSFER_ACTIONS:
            inner = sim.handlers.get(key)
            if inner is not None:
                sim.handlers[key] = self._wrap(inner)

    def _wrap(self, inner: Any) -> Any:
        def handler(sim: Any, msg: Any) -> Any:
            self.times.append(time.perf_counter())
            return inner(sim, msg)

        return handler

    def reset(self) -> None:
        self.times.clear()

    def first_after(self, t: float) -> float:
        return next((x for x in self.times if x > t), 0.0)


class InternalProbe:
    """callbridge's own share, timed in the bench process around the real ``AmiProtocol`` (bench-only
    monkeypatching; the product is unchanged):

    * in: the ``data_received`` call whose chunk completed the DTMFEnd of ``digit`` on an agent channel
      (time taken on entry, before framing);
    * out: ``send_action`` of the first transfer action returned (the bytes handed to the transport).

    Time spent in the kernel's socket buffer while callbridge's loop is busy is not in this figure
    (it is in the simulator-side one).
    """

    def __init__(self, digit: str) -> None:
        self.digit = digit
        self.dtmf: list[float] = []
        self.actions: list[float] = []
        self._chunk_at = 0.0
        #: per DTMFEnd of ``digit``: (chunk in, engine service starts on it, engine service done with it)
        self.stages: list[tuple[float, float, float]] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        from callbridge.ami.client import AmiClient
        from callbridge.ami.protocol import AmiProtocol
        from callbridge.runtime.engine_service import EngineService

        probe = self
        data_received = AmiProtocol.data_received
        send_action = AmiProtocol.send_action
        on_event = AmiClient._on_event
        on_events = AmiClient._on_events
        consume_one = EngineService._consume_one

        def timed_data_received(proto: Any, data: bytes) -> None:
            probe._chunk_at = time.perf_counter()
            data_received(proto, data)

        def is_press(msg: Any) -> bool:
            return bool(msg.name == "DTMFEnd" and msg.get("Digit") == probe.digit
                        and "/agent" in (msg.get("Channel") or ""))  # fmt: skip

        def timed_on_event(client: Any, msg: Any) -> None:
            if is_press(msg):
                probe.dtmf.append(probe._chunk_at)
            on_event(client, msg)

        def timed_on_events(client: Any, msgs: list[Any]) -> None:
            probe.dtmf.extend(probe._chunk_at for msg in msgs if is_press(msg))
            on_events(client, msgs)

        def timed_consume_one(service: Any, item: Any) -> None:
            started = time.perf_counter()
            consume_one(service, item)
            if (type(item).__name__ == "DTMFEnd" and getattr(item, "digit", None) == probe.digit and probe.dtmf
                    and len(probe.stages) < len(probe.dtmf)):  # fmt: skip
                probe.stages.append((probe.dtmf[-1], started, time.perf_counter()))

        def timed_send_action(proto: Any, action: Any, action_id: str) -> Any:
            future = send_action(proto, action, action_id)
            if action.name.lower() in TRANSFER_ACTIONS:
                probe.actions.append(time.perf_counter())
            return future

        self._saved = [(AmiProtocol, "data_received", data_received), (AmiProtocol, "send_action", send_action),
                       (AmiClient, "_on_event", on_event), (AmiClient, "_on_events", on_events),
                       (EngineService, "_consume_one", consume_one)]  # fmt: skip
        setattr(AmiProtocol, "data_received", timed_data_received)  # noqa: B010  # bench-only shim
        setattr(AmiProtocol, "send_action", timed_send_action)  # noqa: B010
        setattr(AmiClient, "_on_event", timed_on_event)  # noqa: B010
        setattr(AmiClient, "_on_events", timed_on_events)  # noqa: B010
        setattr(EngineService, "_consume_one", timed_consume_one)  # noqa: B010

    def uninstall(self) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)
        self._saved = []

    def reset(self) -> None:
        self.dtmf.clear()
        self.actions.clear()
        self.stages.clear()

    def stage_ms(self) -> dict[str, list[float]]:
        """Where the time goes: ``to_consumer`` read + frame + decode + stream hand-off; ``decide`` tracker +
        engine decision + effects, up to the first action written when the consumer writes it itself (the
        engine starts action batches eagerly), else up to the consumer's return; ``to_write`` from the
        consumer's return to the first action written (0 when written inside the consumer's step)."""
        out: dict[str, list[float]] = {"to_consumer": [], "decide": [], "to_write": []}
        for chunk_at, started, done in self.stages:
            first = next((a for a in self.actions if a > started), None)
            if first is None:
                continue
            out["to_consumer"].append((started - chunk_at) * 1000)
            out["decide"].append((min(done, first) - started) * 1000)
            out["to_write"].append(max(0.0, first - done) * 1000)
        return out

    def samples_ms(self) -> list[float]:
        """Per DTMFEnd: the first transfer action written after it and before the next DTMFEnd."""
        out: list[float] = []
        for i, t in enumerate(self.dtmf):
            limit = self.dtmf[i + 1] if i + 1 < len(self.dtmf) else float("inf")
            first = next((a for a in self.actions if t < a < limit), None)
            if first is not None:
                out.append((first - t) * 1000)
        return out
