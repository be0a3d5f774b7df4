"""A realistic AMI event stream for the benchmarks, shaped like the recorded Asterisk 22 traces.

Every event carries the header set Asterisk 22 writes (``Event``, ``Privilege``, the 14-field channel
snapshot in wire order, then the event's own fields; ``Dest``-prefixed snapshots for Dial events, the
bridge block before the snapshot for Bridge events) — copied from ``tests/fixtures/asterisk-22``.
Calls are complete and consistent (every channel that is created is hung up, every bridge destroyed),
interleaved across ``concurrency`` simultaneous calls, so that a tracker sees the state a busy hotline
would produce. Some callers have Chinese names (multi-byte UTF-8 that TCP reads may split).

The stream is deterministic for a given (events, seed, concurrency) and cached on disk, because
building 500k events in Python takes seconds that do not belong to any measurement.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
END_EVENT = b"Event: BenchEnd\r\nPrivilege: system,all\r\n\r\n"
#: Where the timed part of a steady-state stream (:func:`generate_steady`) begins: every client of a
#: comparison starts its clocks and its count at this event (:mod:`bench.ingest`).
START_EVENT = b"Event: BenchStart\r\nPrivilege: system,all\r\n\r\n"
#: The last call of every stream: its ``call.ended`` tells a daemon-level consumer the stream is done.
END_CALL_ID = "bench.end"
STREAM_VERSION = 4  # bump when the shape changes so cached files are rebuilt

HOTLINES = ("12345", "110", "119", "120", "122", "95598")
NAMES = (
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆 (12345)", "赵敏", "José Müller", "Caller A", "Li Wei",
    "<unknown>", "<unknown>", "<unknown>", "<unknown>",
)
STATE_DESC = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}


class Channel:
    """The mutable facts a snapshot is written from."""

    __slots__ = ("cid_name", "cname", "cnum", "context", "exten", "linkedid", "name", "num", "prio", "state", "uid")

    def __init__(self, name: str, uid: str, linkedid: str, num: str, cid_name: str, context: str, exten: str) -> None:
        self.name = name
        self.uid = uid
        self.linkedid = linkedid
        self.num = num
        self.cid_name = cid_name
        self.cnum = "<unknown>"
        self.cname = "<unknown>"
        self.context = context
        self.exten = exten
        self.prio = 1
        self.state = "0"


def snapshot(ch: Channel, prefix: str = "") -> str:
    p = prefix
    return (
        f"{p}Channel: {ch.name}\r\n{p}ChannelState: {ch.state}\r\n{p}ChannelStateDesc: {STATE_DESC[ch.state]}\r\n"
        f"{p}CallerIDNum: {ch.num}\r\n{p}CallerIDName: {ch.cid_name}\r\n"
        f"{p}ConnectedLineNum: {ch.cnum}\r\n{p}ConnectedLineName: {ch.cname}\r\n"
        f"{p}Language: zh\r\n{p}AccountCode: \r\n{p}Context: {ch.context}\r\n{p}Exten: {ch.exten}\r\n"
        f"{p}Priority: {ch.prio}\r\n{p}Uniqueid: {ch.uid}\r\n{p}Linkedid: {ch.linkedid}\r\n"
    )


def event(name: str, privilege: str, body: str) -> bytes:
    return f"Event: {name}\r\nPrivilege: {privilege},all\r\n{body}\r\n".encode()


def bridge_block(bid: str, count: int) -> str:
    return (
        f"BridgeUniqueid: {bid}\r\nBridgeType: basic\r\nBridgeTechnology: simple_bridge\r\n"
        f"BridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\nBridgeNumChannels: {count}\r\n"
        "BridgeVideoSourceMode: none\r\n"
    )


def keys(ch: Channel, digits: str) -> Iterator[bytes]:
    """DTMF received on ``ch``: Begin/End per digit, as Asterisk 22 writes them."""
    for digit in digits:
        dtmf = "Digit: " + digit + "\r\nDirection: Received\r\n"
        yield event("DTMFBegin", "dtmf", snapshot(ch) + dtmf)
        yield event("DTMFEnd", "dtmf", snapshot(ch) + dtmf + "DurationMs: 120\r\n")


def queue_call(n: int, rng: random.Random, epoch: int) -> Iterator[bytes]:
    """One inbound hotline call: trunk → queue → agent answers → talk (maybe DTMF) → both hang up."""
    hotline = HOTLINES[n % len(HOTLINES)]
    caller_num = f"13{rng.randrange(100000000, 999999999)}"
    cid_name = NAMES[n % len(NAMES)]
    uid = f"{epoch}.{2 * n}"
    caller = Channel(f"PJSIP/trunk-{hotline}-{2 * n:08x}", uid, uid, caller_num, cid_name, "cb-inbound", hotline)
    agent_no = 1001 + rng.randrange(200)
    auid = f"{epoch}.{2 * n + 1}"
    agent = Channel(f"PJSIP/agent{agent_no}-{2 * n + 1:08x}", auid, uid, str(agent_no), f"Agent {agent_no}",
                    "from-agents", hotline)
    bid = f"{n:08x}-5c1e-4a7b-9d3e-{rng.randrange(16**12):012x}"
    queue = f"q-{hotline}"

    caller.state = "4"
    yield event("Newchannel", "call", snapshot(caller))
    for var, val in (("SIPCALLID", f"{rng.randrange(16**16):016x}@10.0.0.8"), ("CB_HOTLINE", hotline)):
        yield event("VarSet", "dialplan", snapshot(caller) + f"Variable: {var}\r\nValue: {val}\r\n")
    newexten = f"Extension: {hotline}\r\nApplication: Answer\r\nAppData: \r\n"
    yield event("Newexten", "dialplan", snapshot(caller) + newexten)
    caller.state = "6"
    yield event("Newstate", "call", snapshot(caller))
    caller.prio = 3
    yield event("VarSet", "dialplan", snapshot(caller) + "Variable: QUEUE_PRIO\r\nValue: 0\r\n")
    yield event("QueueCallerJoin", "agent", snapshot(caller) + f"Queue: {queue}\r\nPosition: 1\r\nCount: 1\r\n")
    agent.cnum, agent.cname = caller.num, caller.cid_name
    yield event("Newchannel", "call", snapshot(agent))
    yield event("AgentCalled", "agent", snapshot(caller) + snapshot(agent, "Dest")
                + f"Queue: {queue}\r\nInterface: PJSIP/agent{agent_no}\r\nMemberName: agent{agent_no}\r\n")
    yield event("DialBegin", "call", snapshot(caller) + snapshot(agent, "Dest") + f"DialString: agent{agent_no}\r\n")
    agent.state = "5"
    yield event("Newstate", "call", snapshot(agent))
    yield event("DialState", "call", snapshot(caller) + snapshot(agent, "Dest") + "DialStatus: RINGING\r\n")
    agent.state = "6"
    yield event("Newstate", "call", snapshot(agent))
    yield event("DialEnd", "call", snapshot(caller) + snapshot(agent, "Dest") + "DialStatus: ANSWER\r\n")
    yield event("VarSet", "dialplan", snapshot(caller) + "Variable: DIALSTATUS\r\nValue: ANSWER\r\n")
    caller.cnum, caller.cname = agent.num, agent.cid_name
    yield event("NewConnectedLine", "call", snapshot(caller))
    yield event("AgentConnect", "agent", snapshot(caller) + snapshot(agent, "Dest")
                + f"Queue: {queue}\r\nInterface: PJSIP/agent{agent_no}\r\nMemberName: agent{agent_no}\r\n"
                + f"HoldTime: {rng.randrange(30)}\r\nRingTime: {rng.randrange(1, 9)}\r\n")
    yield event("QueueCallerLeave", "agent", snapshot(caller) + f"Queue: {queue}\r\nPosition: 1\r\nCount: 0\r\n")
    yield event("BridgeCreate", "call", bridge_block(bid, 0))
    yield event("BridgeEnter", "call", bridge_block(bid, 1) + snapshot(agent))
    yield event("BridgeEnter", "call", bridge_block(bid, 2) + snapshot(caller))
    for var, who in (("BRIDGEPEER", agent.name), ("BRIDGEPVTCALLID", "")):
        yield event("VarSet", "dialplan", snapshot(caller) + f"Variable: {var}\r\nValue: {who}\r\n")
    if n % 4 == 0:  # a quarter of the agents press keys (not a one-key code: no transfer starts)
        yield from keys(agent, "58")
    yield event("HangupRequest", "call", snapshot(agent) + "Cause: 16\r\n")
    yield event("BridgeLeave", "call", bridge_block(bid, 1) + snapshot(agent))
    yield event("BridgeLeave", "call", bridge_block(bid, 0) + snapshot(caller))
    yield event("BridgeDestroy", "call", bridge_block(bid, 0))
    yield event("AgentComplete", "agent", snapshot(caller) + snapshot(agent, "Dest")
                + f"Queue: {queue}\r\nInterface: PJSIP/agent{agent_no}\r\nMemberName: agent{agent_no}\r\n"
                + "HoldTime: 3\r\nTalkTime: 42\r\nReason: agent\r\n")
    yield event("Hangup", "call", snapshot(agent) + "Cause: 16\r\nCause-txt: Normal Clearing\r\n")
    yield event("SoftHangupRequest", "call", snapshot(caller) + "Cause: 16\r\n")
    yield event("Hangup", "call", snapshot(caller) + "Cause: 16\r\nCause-txt: Normal Clearing\r\n")


def generate(events: int, *, seed: int = 8, concurrency: int = 400) -> Iterator[bytes]:
    """``events`` AMI events (whole calls, so the count is rounded up to the end of the last call)."""
    rng = random.Random(seed)
    epoch = 1795917000
    return interleave(lambda n: queue_call(n, rng, epoch), events, rng, concurrency)


def interleave(
    start_call: Callable[[int], Iterator[bytes]], events: int, rng: random.Random, concurrency: int,
    active: list[Iterator[bytes]] | None = None,
) -> Iterator[bytes]:
    """Calls ``start_call(0)``, ``start_call(1)`` … kept ``concurrency`` at a time (beside the calls of
    ``active``, already under way), their events taken from a random one each step, until ``events`` are out
    and every started call has ended."""
    active = [] if active is None else active
    started = 0
    emitted = 0
    while emitted < events or active:
        while emitted < events and len(active) < concurrency:
            active.append(start_call(started))
            started += 1
        idx = rng.randrange(len(active))
        item = next(active[idx], None)
        if item is None:
            active[idx] = active[-1]
            active.pop()
            continue
        emitted += 1
        yield item


def generate_steady(events: int, *, calls: int, seed: int = 8) -> Iterator[bytes]:
    """``calls`` calls in progress at every moment, each at a random point of its life, before ``BenchStart``;
    then ``events`` events of the same interleaving (a new call starts whenever one ends), and no more.

    The untimed prefix is what makes the timed part a steady state: :func:`generate` starts every call at
    once, so with ``calls`` large against ``events`` its stream is mostly the first events of each call
    (set-up) while the tracked state grows from nothing. Here each call is first advanced by a uniform random
    number of its events (half a call on average, interleaved at random like the rest, so that the tracker's
    heap is laid out as a busy PBX's would be, not call by call); the mix and the state size of the timed
    part are then those of ``calls`` simultaneous calls in progress.
    """
    rng = random.Random(seed)
    epoch = 1795917000
    # Fewer than CALL_EVENTS events each: no call ends in the prefix, so all ``calls`` are under way at its end.
    advancing = [(queue_call(n, rng, epoch), rng.randrange(CALL_EVENTS)) for n in range(calls)]
    parked: list[Iterator[bytes]] = []
    while advancing:
        idx = rng.randrange(len(advancing))
        it, left = advancing[idx]
        if left == 0:
            parked.append(it)
            advancing[idx] = advancing[-1]
            advancing.pop()
            continue
        advancing[idx] = (it, left - 1)
        yield next(it)
    yield START_EVENT
    # cut after ``events``, as a stream of a PBX that keeps working (the calls under way are not ended)
    yield from itertools.islice(interleave(lambda n: queue_call(calls + n, rng, epoch), 10**15, rng, calls, parked),
                                events)


#: Events of the shortest call of :func:`queue_call` (a quarter have four more: DTMF keys).
CALL_EVENTS = 31


def stream_file(events: int, *, seed: int = 8, concurrency: int = 400) -> tuple[Path, int]:
    """The cached stream on disk (banner, events, a final ``BenchEnd``) and its exact event count."""
    name = f"ami-v{STREAM_VERSION}-{events}-{seed}-{concurrency}"
    return cached_stream(name, lambda: generate(events, seed=seed, concurrency=concurrency))


def cached_stream(name: str, items: Callable[[], Iterable[bytes]]) -> tuple[Path, int]:
    """``$TMPDIR/callbridge-bench/NAME.raw``: banner, ``items()``, the end call, ``BenchEnd``; and its event
    count (after ``BenchStart`` when ``items()`` has one: what the clients count). Written once (building a
    large stream in Python takes seconds no measurement should pay)."""
    cache = Path(tempfile.gettempdir()) / "callbridge-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"{name}.raw"
    count_path = path.with_suffix(".count")
    if path.exists() and count_path.exists():
        return path, int(count_path.read_text())
    tmp = path.with_suffix(".tmp")
    count = 0
    with tmp.open("wb") as out:
        out.write(BANNER)
        chunk: list[bytes] = []
        for item in items():
            chunk.append(item)
            count = 0 if item is START_EVENT else count + 1  # what a client counts: the events after it
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        chunk += [*end_call(), END_EVENT]
        out.write(b"".join(chunk))
    tmp.replace(path)
    count_path.write_text(str(count + 3))
    return path, count + 3


def end_call() -> list[bytes]:
    ch = Channel("PJSIP/trunk-12345-ffffffff", END_CALL_ID, END_CALL_ID, "13800000000", "<unknown>", "cb-inbound",
                 "12345")
    ch.state = "4"
    return [event("Newchannel", "call", snapshot(ch)),
            event("Hangup", "call", snapshot(ch) + "Cause: 16\r\nCause-txt: Normal Clearing\r\n")]
