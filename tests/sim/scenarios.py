"""Per-scenario lab set-up for the fidelity test: what the SIPp far ends did in each recording.

Each profile configures endpoint behaviour on the simulator and returns hooks (simulated time,
callable) for what the lab harness did outside AMI. The facts come from each scenario's ``.log``
notes and ``sipp-*.msgs.log`` files in ``tests/fixtures/asterisk-22``.
"""

from __future__ import annotations

from collections.abc import Callable

from callbridge.sim.simulator import Simulator

Hook = tuple[float, Callable[[], None]]


def _busy_hotline(sim: Simulator) -> list[Hook]:
    sim.set_trunk("hotline-12345", "busy")  # SIPp UAS answers every INVITE with 486
    return []


def _ringing_hotline(sim: Simulator) -> list[Hook]:
    sim.set_trunk("hotline-12345", "noanswer")  # 180 Ringing, never answers
    return []


def _nothing_listening(sim: Simulator) -> list[Hook]:
    sim.set_trunk("hotline-12345", "unreachable")  # no SIPp on :5080, INVITE times out (Timer B 32 s)
    sim.set_trunk("hotline-12399", "down")  # qualified contact unavailable
    return []


def _dtmf_agent(sim: Simulator) -> list[Hook]:
    # uas_dtmf.xml: 0.5 s after the ACK, 2 s audio, '*' 120 ms, 300 ms, '1', 2 s, '5'.
    def press(digits: str) -> Callable[[], None]:
        return lambda: sim.agent_press("agent1001", digits, duration_ms=120, gap=0.3)

    return [(3.1, press("*1")), (5.6, press("5"))]


def _carrier_call(sim: Simulator) -> list[Hook]:
    # SIPp UAC calls DID 4008000300 and sends BYE 6 s after its ACK.
    return [(0.005, lambda: sim.place_call("13800138000", "4008000300", hangup_after=6.0))]


def _restart(sim: Simulator) -> list[Hook]:
    return [(1.829, sim.restart)]


PROFILES: dict[str, Callable[[Simulator], list[Hook]]] = {
    "13": _busy_hotline,
    "15": _ringing_hotline,
    "16": _nothing_listening,
    "18": _dtmf_agent,
    "20": _restart,
    "21": _carrier_call,
}
