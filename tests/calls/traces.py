"""The recorded traces for the tracker tests: names, bytes, and decoded events (cached)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from callbridge.ami.event_types import AmiEvent
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.testing.replay import events_from_raw, replay_events
from tests.conftest import traces_dir


def trace_names() -> list[str]:
    return sorted(p.name.removesuffix(".rx.raw") for p in traces_dir().glob("*.rx.raw"))


def trace_path(name: str) -> Path:
    return traces_dir() / f"{name}.rx.raw"


def trace_bytes(name: str) -> bytes:
    return trace_path(name).read_bytes()


@cache
def trace_events(name: str) -> tuple[AmiEvent, ...]:
    return tuple(events_from_raw(trace_bytes(name)))


def full_name(prefix: str) -> str:
    """``"04"`` → ``"04_blind_transfer_sip_agent_to_hotline"``."""
    (name,) = [n for n in trace_names() if n.split("_", 1)[0] == prefix]
    return name


def replay_trace(name: str) -> tuple[list[DomainEvent], CallTracker]:
    return replay_events(trace_events(name))


def replay_until(name: str, stop: Callable[[AmiEvent], bool], nth: int = 1) -> tuple[list[DomainEvent], CallTracker]:
    """Replay up to and including the ``nth`` event matching ``stop`` (to inspect the state mid-call)."""
    events = trace_events(name)
    seen = 0
    for i, ev in enumerate(events):
        if stop(ev):
            seen += 1
            if seen == nth:
                return replay_events(events[: i + 1])
    raise AssertionError(f"{name}: no event #{nth} matching the stop condition")


def of_type(derived: list[DomainEvent], type_: str, call_id: str | None = None) -> list[DomainEvent]:
    return [e for e in derived if type_ == e.TYPE and (call_id is None or e.call_id == call_id)]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES_DIR = FIXTURES / "traces-cases"  # minimal traces written from Asterisk's documented events
LIVE_DIR = FIXTURES / "traces-live"  # sessions recorded on a live Asterisk


def case_path(name: str) -> Path:
    return CASES_DIR / f"{name}.rx.raw"


def replay_case(name: str) -> tuple[list[DomainEvent], CallTracker]:
    return replay_events(tuple(events_from_raw(case_path(name).read_bytes())))


def all_fixture_traces() -> list[Path]:
    """Every AMI trace the tests replay: the recorded ones, the minimal cases, the live recordings."""
    dirs = [traces_dir(), CASES_DIR, LIVE_DIR]
    seen: dict[str, Path] = {}
    for d in dirs:
        for p in sorted(d.glob("*.rx.raw")) if d.is_dir() else ():
            seen.setdefault(f"{d.name}/{p.name}", p)
    return list(seen.values())
