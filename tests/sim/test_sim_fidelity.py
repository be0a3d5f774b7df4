"""Fidelity: every recorded Asterisk 22 scenario, replayed against the simulator, gives the same
per-channel event streams and the same replies (see callbridge.sim.fidelity for what is compared)."""

from __future__ import annotations

import functools
import secrets
from pathlib import Path

import pytest

from callbridge.ami.framing import AmiMessage
from callbridge.sim.config import lab_config
from callbridge.sim.fidelity import compare, digest, initial_counters, load_scenario, parse_stream
from callbridge.sim.replay import replay_virtual
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from tests.conftest import traces_dir
from tests.sim.scenarios import PROFILES


def _scenarios() -> list[str]:
    path = traces_dir()
    return sorted(p.name.removesuffix(".rx.raw") for p in path.glob("*.rx.raw")) if path.is_dir() else []


async def _simulate(traces: Path, name: str) -> tuple[list[AmiMessage], list[AmiMessage], Simulator]:
    recorded, actions, _notes = load_scenario(traces, name)
    secret = secrets.token_hex(8)
    sim = Simulator(lab_config(counters=initial_counters(recorded)), users=[AmiUser("callbridge", secret)],
                    login_fail_delay=0.01, manual_clock=True)
    profile = PROFILES.get(name[:2])
    hooks = profile(sim) if profile else []
    await sim.start()
    try:
        # 01a logs in with a wrong secret on purpose: keep the recorded one (it is not ours).
        data = await replay_virtual(sim, actions, secret="" if name.startswith("01a") else secret, hooks=hooks,
                                    recorded=recorded)
    finally:
        await sim.stop()
    return recorded, parse_stream(data), sim


@functools.cache
def _recorded_header_sets() -> dict[str, set[frozenset[str]]]:
    """Every header-name set each event type had in any recording (ActionID aside)."""
    sets: dict[str, set[frozenset[str]]] = {}
    for path in traces_dir().glob("*.rx.raw"):
        for msg in parse_stream(path.read_bytes()):
            if msg.kind == "event":
                sets.setdefault(msg.name, set()).add(frozenset(k for k, _ in msg.headers if k != "ActionID"))
    return sets


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", _scenarios())
async def test_scenario_matches_recording(traces: Path, name: str) -> None:
    recorded, simulated, sim = await _simulate(traces, name)
    assert sim.errors == []
    result = compare(recorded, simulated)
    assert result.ok, f"{name} differs from the recording:\n{result}"
    # every event the simulator sent has a header set real Asterisk also used for that event
    known = _recorded_header_sets()
    for msg in simulated:
        if msg.kind == "event" and msg.name in known:
            names = frozenset(k for k, _ in msg.headers if k != "ActionID")
            assert names in known[msg.name], f"{msg.name} headers {sorted(names)} never seen in a recording"


def test_every_scenario_is_covered(traces: Path) -> None:
    names = _scenarios()
    assert len(names) >= 19
    assert {"02", "03", "04", "05", "07", "08", "09", "10", "13"} <= {n[:2] for n in names}


async def test_comparison_reports_a_changed_hangup_cause(traces: Path) -> None:
    recorded, simulated, _sim = await _simulate(traces, "13_transfer_target_busy")
    tampered = [
        AmiMessage(tuple((k, "16" if k == "Cause" and m.get("Cause") == "17" and m.name == "Hangup" else v)
                         for k, v in m.headers))
        for m in simulated
    ]
    result = compare(recorded, tampered)
    assert not result.ok
    text = str(result)
    assert "Hangup Cause=17" in text and "Hangup Cause=16" in text
    assert "Local/caller@sim-<1>;1 [state]" in text


async def test_comparison_reports_missing_and_extra_channels(traces: Path) -> None:
    recorded = load_scenario(traces, "02_originate_two_local_and_bridge")[0]
    other = load_scenario(traces, "03_originate_dial_local_agent")[0]
    result = compare(recorded, other)
    assert not result.ok
    assert any("missing from the simulation" in d for d in result.differences)
    assert any("not in the recording" in d for d in result.differences)


def test_digest_names_channels_by_order_not_hex_suffix() -> None:
    def ev(name: str, **h: str) -> AmiMessage:
        return AmiMessage((("Event", name), *h.items()))

    a = [ev("Newchannel", Channel="PJSIP/agent1001-0000000c", ChannelStateDesc="Down"),
         ev("Hangup", Channel="PJSIP/agent1001-0000000c", Cause="16")]
    b = [ev("Newchannel", Channel="PJSIP/agent1001-00000000", ChannelStateDesc="Down"),
         ev("Hangup", Channel="PJSIP/agent1001-00000000", Cause="16")]
    assert digest(a).per_channel == digest(b).per_channel
    assert list(digest(a).per_channel) == ["PJSIP/agent1001-<1> [state]"]


def test_parse_stream_reads_the_recorded_bytes(traces: Path) -> None:
    messages = parse_stream((traces / "01_login_coresettings.rx.raw").read_bytes())
    assert messages[0].get("Message") == "Authentication accepted"
    assert any(m.name == "FullyBooted" for m in messages)
