"""The tracker's fast paths change nothing observable.

Fast paths: snapshot unpacking, the debug-log guard, skipping a snapshot that would change none of its
channel's fields (:meth:`TrackerState.touch`), the offers index and the queue index of
:func:`callbridge.calls.rooms.channel_gone`, the domain-event constructors of :mod:`callbridge.calls.builders`
and the model's quick constructors (:func:`callbridge.calls.model.quick_constructor`). Each is compared with
the plain way over every recorded trace and over the benchmark stream: same domain events, same state after
every event.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bench.amistream import generate, generate_steady
from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode
from callbridge.ami.event_types import AmiEvent, ChannelSnapshot
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls import builders, handlers, model, rooms, state
from callbridge.calls import events as ce
from callbridge.calls.model import Bridge, Call, CallState, Channel, Queue, QueueCaller, States
from callbridge.calls.state import HotlineOf, TrackerState
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from tests.calls.traces import trace_bytes, trace_events, trace_names


def _replay(messages: list[AmiMessage]) -> tuple[list[dict[str, object]], dict[str, object]]:
    tracker = CallTracker(hotline_of=lambda snap: "12345" if snap.context == "cb-inbound" else None)
    out: list[dict[str, object]] = []
    for msg in messages:
        if msg.kind == "event":
            out += [{"type": ev.TYPE, **ev.data()} for ev in tracker.feed(decode(msg), now=1.0)]
    return out, tracker.snapshot()


def test_lazy_and_built_messages_drive_the_tracker_identically() -> None:
    compared = 0
    for name in trace_names():
        lazy = [f for f in AmiFramer().feed(trace_bytes(name)) if isinstance(f, AmiMessage)]
        built = [AmiMessage(tuple(m.headers)) for m in lazy]
        fast, slow = _replay(lazy), _replay(built)
        assert fast == slow, name
        compared += len(fast[0])
    assert compared > 50, "the traces produce domain events"


def _transition_logged(configure: Callable[[], None]) -> list[str]:
    """The log lines of one expected transition by a tracker built under the configuration ``configure`` makes
    (the tracker asks once, when it is built, whether debug lines are written)."""
    configure()  # conftest restores the configuration afterwards
    tracker = CallTracker(clock=lambda: 0.0)
    call = Call(call_id="c1", created=0.0)
    with capture_logs() as logs:
        tracker.state.set_state(call, CallState.RINGING, "test")
    assert call.state is CallState.RINGING
    return [e["event"] for e in logs]


def _at(level: int) -> Callable[[], None]:
    return lambda: structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


def test_expected_transitions_log_at_debug_only_when_debug_is_on() -> None:
    assert _transition_logged(_at(logging.INFO)) == []
    assert _transition_logged(_at(logging.DEBUG)) == ["call.transition"]


def test_debug_guard_agrees_with_every_structlog_configuration() -> None:
    """Built under each configuration, a tracker logs a transition at debug exactly when that configuration
    writes debug lines: filtering loggers at every level, structlog's defaults, its stdlib logger."""

    def stdlib(level: int) -> Callable[[], None]:
        def configure() -> None:
            structlog.configure(
                wrapper_class=structlog.stdlib.BoundLogger, logger_factory=structlog.stdlib.LoggerFactory()
            )
            logging.getLogger("callbridge.calls").setLevel(level)

        return configure

    cases = [(_at(logging.WARNING), False), (_at(logging.DEBUG), True), (_at(logging.NOTSET), True),
             (structlog.reset_defaults, True), (_at(logging.ERROR), False)]  # fmt: skip
    try:
        cases += [(stdlib(logging.INFO), False), (stdlib(logging.DEBUG), True)]
        for configure, writes_debug in cases:
            assert _transition_logged(configure) == (["call.transition"] if writes_debug else [])
    finally:
        logging.getLogger("callbridge.calls").setLevel(logging.NOTSET)


# --- every fast path against the plain way ------------------------------------------------------------


_touch = TrackerState.touch


def _touch_applying_every_snapshot(
    t: TrackerState, snap: ChannelSnapshot | None, out: list[DomainEvent], create: bool = True
) -> Channel | None:
    """``TrackerState.touch`` with no channel known as settled (``Channel.settled``), so no snapshot is skipped."""
    ch = t.channels.get(snap.uniqueid) if snap is not None else None
    if ch is not None:
        ch.settled = False
    return _touch(t, snap, out, create)


def _remove_caller_moving_everyone_up(queue: Queue, uid: str) -> QueueCaller | None:
    """``rooms.remove_caller`` as it was before ``Queue.top``: every caller behind looked at, on every leave."""
    gone = queue.callers.pop(uid, None)
    if gone is not None:
        for other in queue.callers.values():
            if other.position > gone.position:
                other.position -= 1
    return gone


def _channel_gone_scanning_every_queue(t: TrackerState, ch: Channel, out: list[DomainEvent]) -> None:
    """``rooms.channel_gone`` as it was before the queue index: every queue and room is looked at."""
    uid = ch.uniqueid
    for queue in t.queues.values():
        rooms.remove_caller(queue, uid)
        for key in [k for k, rung in queue.offers.items() if rung == uid]:
            del queue.offers[key]
    for conf in list(t.conferences.values()):
        if uid in conf.parties:
            rooms.leave_conference(t, conf, uid, out)


def _class_call(cls: type[Any], *names: str) -> Callable[..., Any]:
    """What a quick constructor stands for: the class called with those fields as keywords."""
    return lambda *args: cls(**dict(zip(names, args, strict=True)))


_QUICK = {  # quick constructor → (the modules that call it, the class and the fields it takes)
    "new_channel": ((state,), Channel, ("uniqueid", "name", "linkedid", "created", "first_seq")),
    "new_call": ((state,), Call, ("call_id", "created")),
    "new_bridge": ((handlers,), Bridge, ("bridge_id", "bridge_type", "technology", "creator", "name")),
    "new_queue_caller": ((rooms,), QueueCaller, ("uniqueid", "channel", "caller_num", "position", "joined", "call_id")),
}


@contextmanager
def _plain_ways() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rooms, "channel_gone", _channel_gone_scanning_every_queue)
        mp.setattr(rooms, "remove_caller", _remove_caller_moving_everyone_up)
        mp.setattr(TrackerState, "touch", _touch_applying_every_snapshot)
        for name, (users, cls, fields) in _QUICK.items():
            for module in users:
                mp.setattr(module, name, _class_call(cls, *fields))
        for cls in ce.CALL_EVENT_TYPES:
            if hasattr(builders, cls.__name__):
                mp.setattr(builders, cls.__name__, cls)
        yield


def _norm(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f for f in dataclasses.fields(value) if not f.metadata.get("index")]  # a fast path's own
        return {f.name: _norm(getattr(value, f.name)) for f in fields}
    if isinstance(value, set | frozenset):
        return sorted(_norm(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


def _state(t: CallTracker) -> object:
    """Everything the tracker holds that the plain way holds too (not the fast paths' own indexes)."""
    s = t.state
    return _norm([t.channels, s.by_name, t.calls, t.bridges, t.queues, t.conferences, list(s.gone), s.seq, s.uptime,
                  {k: len(v) for k, v in s.lists.items()}, s.list_start, t.snapshot()])  # fmt: skip


def _run(events: list[AmiEvent], hotline_of: HotlineOf | None, every: int) -> list[object]:
    tracker = CallTracker(hotline_of=hotline_of)
    seen: list[object] = []
    for i, ev in enumerate(events):
        derived = tracker.feed(ev, now=ev.timestamp if ev.timestamp is not None else i * 0.01)
        seen.append([(type(d), d) for d in derived])
        if i % every == 0 or i == len(events) - 1:
            seen.append(_state(tracker))
    return seen


def _compare(events: list[AmiEvent], hotline_of: Callable[[], HotlineOf | None], every: int = 1) -> int:
    """Replay both ways (each with a fresh ``hotline_of()``); return how many domain events were compared."""
    with _plain_ways():
        plain = _run(events, hotline_of(), every)
    fast = _run(events, hotline_of(), every)
    for i, (a, b) in enumerate(zip(plain, fast, strict=True)):
        assert a == b, f"diverged at record {i}"
    return sum(len(x) for x in plain if isinstance(x, list) and x and isinstance(x[0], tuple))


def _inbound(snap: ChannelSnapshot) -> str | None:
    return snap.exten if snap.context == "cb-inbound" else None


class _SlowToAnswer:
    """A ``hotline_of`` that names a channel's hotline only from the second time it is asked about it: the
    tracker must keep asking about a caller whose hotline is unknown, even with an unchanged snapshot."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __call__(self, snap: ChannelSnapshot) -> str | None:
        first = snap.uniqueid not in self.asked
        self.asked.add(snap.uniqueid)
        return None if first else snap.exten or "12345"


def _hotlines(kind: str) -> HotlineOf | None:
    return {"none": None, "inbound": _inbound, "slow": _SlowToAnswer()}[kind]


@pytest.mark.parametrize("hotlines", ["none", "inbound", "slow"])
def test_fast_paths_match_the_plain_way_on_every_trace(hotlines: str) -> None:
    derived = sum(_compare(list(trace_events(name)), lambda: _hotlines(hotlines), every=2) for name in trace_names())
    assert derived > 50, "the traces produce domain events"


_SETTLING = (ami.AgentConnect, ami.AgentComplete, ami.AgentRingNoAnswer, ami.QueueCallerLeave)


def _perturbed(events: list[AmiEvent]) -> Iterator[list[AmiEvent]]:
    """Odd streams: attached mid-stream, every event twice, and callers that hang up while still offered."""
    unsettled = [e for e in events if not isinstance(e, _SETTLING)]
    yield [e for e in unsettled if not isinstance(e, ami.QueueCallerJoin | ami.QueueEntry)]  # offered, never waiting
    for k in range(1, len(events), max(1, len(events) // 6)):
        yield events[k:]
        yield unsettled[k:]
    yield [e for ev in events for e in (ev, ev)]


def test_fast_paths_match_the_plain_way_on_odd_streams() -> None:
    compared = 0
    for name in trace_names():
        for events in _perturbed(list(trace_events(name))):
            compared += _compare(events, lambda: _hotlines("inbound"), every=3)
    assert compared > 500


@pytest.mark.parametrize("hotlines", ["none", "inbound", "slow"])
def test_fast_paths_match_the_plain_way_on_the_benchmark_stream(hotlines: str) -> None:
    framer = AmiFramer()
    events = [decode(f) for chunk in generate(1500, concurrency=40) for f in framer.feed(chunk)
              if isinstance(f, AmiMessage) and f.kind == "event"]  # fmt: skip
    assert _compare(events, lambda: _hotlines(hotlines), every=40) > 300


def test_fast_paths_match_the_plain_way_on_the_steady_state_stream() -> None:
    """Calls under way at every point of their lives, a member's offer overwritten by the next caller it rings
    before the first is taken (200 members, 120 callers at once), hang-ups while offered."""
    framer = AmiFramer()
    events = [decode(f) for chunk in generate_steady(1200, calls=120) for f in framer.feed(chunk)
              if isinstance(f, AmiMessage) and f.kind == "event"]  # fmt: skip
    assert _compare(events, lambda: _hotlines("inbound"), every=50) > 300


def test_the_offers_index_is_the_offers_the_other_way_round() -> None:
    """``Queue.offered`` (uniqueid → the members ringing it) is exactly ``Queue.offers`` inverted, after every
    event of a stream where offers are made, overwritten, taken and ended by hang-ups."""
    framer = AmiFramer()
    t = CallTracker()
    checked = 0
    for chunk in generate_steady(3000, calls=300):
        for f in framer.feed(chunk):
            if not (isinstance(f, AmiMessage) and f.kind == "event"):
                continue
            t.feed(decode(f), now=0.0)
            for queue in t.queues.values():
                inverted: dict[str, set[str]] = {}
                for key, uid in queue.offers.items():
                    inverted.setdefault(uid, set()).add(key)
                assert {uid: set(keys) for uid, keys in queue.offered.items()} == inverted
                checked += len(inverted)
    assert checked > 10_000


def _sample_values(cls: type[DomainEvent]) -> dict[str, object]:
    """A non-default value for every field (by its default's type), so that no field can be dropped."""
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        default = f.default
        if isinstance(default, bool):
            values[f.name] = not default
        elif isinstance(default, int | float) and default is not None:
            values[f.name] = default + i + 1
        elif f.name == "ts":
            values[f.name] = 1795917000.25
        else:
            values[f.name] = f"{f.name}-{i}"
    return values


def test_every_builder_makes_the_very_object_its_class_makes() -> None:
    built = [cls for cls in ce.CALL_EVENT_TYPES if hasattr(builders, cls.__name__)]
    assert ce.CallAnswered in built and ce.CallEnded in built
    for cls in built:
        build = getattr(builders, cls.__name__)
        for kwargs in (_sample_values(cls), {"ts": 2.5}):
            fast, plain = build(**kwargs), cls(**kwargs)
            assert type(fast) is cls and fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
            assert fast.data() == plain.data() and pickle.loads(pickle.dumps(fast)) == plain
            with pytest.raises(dataclasses.FrozenInstanceError):
                fast.ts = 0.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            build()  # ts is required, as with the class


def test_builders_refuse_classes_they_cannot_build_faithfully() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Checked(DomainEvent):
        n: int = 0

        def __post_init__(self) -> None:
            assert self.n >= 0

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class WithFactory(DomainEvent):
        items: tuple[str, ...] = dataclasses.field(default_factory=tuple)

    with pytest.raises(TypeError, match="__post_init__"):
        builders.fast_constructor(Checked)
    with pytest.raises(TypeError, match="default factory"):
        builders.fast_constructor(WithFactory)


_SAMPLE_ARGS = {
    "new_channel": ("1795917000.12", "PJSIP/agent1001-00000004", "1795917000.11", 12.5, 7),
    "new_call": ("1795917000.11", 12.5),
    "new_bridge": ("8c1f-bridge", "basic", "simple_bridge", "Queue", "q"),
    "new_queue_caller": ("1795917000.11", "PJSIP/trunk-12345-0000000a", "13900000000", 2, 12.5, "1795917000.11"),
}


def test_quick_constructors_build_what_their_classes_build() -> None:
    for name, (users, cls, fields) in _QUICK.items():
        build = getattr(model, name)
        assert all(getattr(module, name) is build for module in users), "the hot paths use the quick one"
        args = _SAMPLE_ARGS[name]
        fast, plain = build(*args), cls(**dict(zip(fields, args, strict=True)))
        assert type(fast) is cls and fast == plain and repr(fast) == repr(plain)
        # the mutable ones (not the shared immutable empties, model.NOTHING and model.NO_VARIABLES)
        containers = [f.name for f in dataclasses.fields(cls) if type(getattr(plain, f.name)) in (set, dict, list)]
        again = build(*args)
        assert all(getattr(again, c) is not getattr(fast, c) for c in containers), "fresh mutable defaults"


def test_quick_constructors_refuse_what_they_cannot_build() -> None:
    with pytest.raises(TypeError, match="no field"):
        model.quick_constructor(Call, "call_id", "created", "nonsense")
    with pytest.raises(TypeError, match="required"):
        model.quick_constructor(Call, "call_id")

    @dataclasses.dataclass(slots=True)
    class Checked:
        n: int = 0

        def __post_init__(self) -> None:
            assert self.n >= 0

    with pytest.raises(TypeError, match="build it with the class"):
        model.quick_constructor(Checked, "n")


def test_states_names_every_call_state() -> None:
    assert {k: v for k, v in vars(States).items() if not k.startswith("_")} == dict(CallState.__members__)
