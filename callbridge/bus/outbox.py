"""The durable outbox: every MQTT message is written here before it is published.

Pure SQLite, no asyncio. The publisher calls it from the event loop on purpose: WAL mode with
``synchronous=NORMAL`` makes a commit a write into the WAL file without an fsync (only checkpoints
fsync), so a batch of a few hundred rows costs well under a millisecond. Moving each call to a thread
(``asyncio.to_thread``) would cost more in hand-offs than the calls take, and would need a lock around
the connection. Keep batches bounded (the publisher reads at most a few hundred rows at a time).

Durability: a row survives a crash of the process once its batch is committed: at once with
``append(..., commit=True)`` (the default), or — what the publisher does, so that all appends of one
event-loop iteration share one commit — at the next :meth:`Outbox.commit`, which :meth:`pending` and
:meth:`close` make first, so an uncommitted row is never handed out for publishing. Each batch is a
savepoint: a failing batch rolls back alone. With ``synchronous=NORMAL`` a *power loss* may lose the
last transactions since the latest checkpoint (set ``synchronous="FULL"`` to trade throughput for that).

Cost per message (the publisher stores two rows per domain event: hotline topic and call topic):
:meth:`Outbox.append_events` takes (topic, payload) pairs and binds only exact int/str/bytearray
values (sqlite3 runs an adapter lookup for every ``bytes``, ``bool`` or ``None`` parameter); only
state and alarm rows are indexed by kind; rows just appended are kept in memory, so the pump reads
what it publishes without a query.

Life of a row: appended (one batch per call) → read in ``seq`` order and published → deleted
by :meth:`Outbox.ack` once the broker's PUBACK arrived. A row that was published but not acknowledged
stays, so after a reconnect or a restart it is published again (the envelope, and so its id, is
unchanged: at-least-once, de-duplicable by id).

Size bound (``max_rows``) and its policy — nothing is dropped silently:

1. Retained *state* rows coalesce: a newer state for the same topic replaces the unpublished older
   one (only the latest state matters), so state never grows without bound by itself.
2. Above ``max_rows``, the OLDEST state rows are dropped first (the next state update supersedes
   them anyway), then the OLDEST event rows (a call-center desk needs the current calls more than
   events that are minutes old; the records store keeps the full history). Alarm rows go last.
3. Crossing the bound sets :attr:`AppendResult.became_full` once per episode (re-armed when the depth
   falls below ``rearm_ratio × max_rows``); the publisher then logs an error and publishes an
   ``outbox.full`` alarm event with the counts. Drop counters are cumulative (:attr:`Outbox.dropped`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from callbridge.bus import deadletters
from callbridge.bus.deadletters import DeadLetter
from callbridge.bus.outbox_mirror import RecentRows, seq_runs

Kind = Literal["event", "state", "alarm"]
_KINDS: dict[str, Kind] = {"event": "event", "state": "state", "alarm": "alarm"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'event',
    coalesce_key TEXT
);
CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox(coalesce_key) WHERE coalesce_key IS NOT NULL;
DROP INDEX IF EXISTS outbox_kind;
CREATE INDEX IF NOT EXISTS outbox_rare_kinds ON outbox(kind, seq) WHERE kind <> 'event';
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_INSERT = "INSERT INTO outbox(seq, topic, payload, retain, kind, coalesce_key) VALUES (?,?,?,?,?,?)"
_INSERT_EVENTS = "INSERT INTO outbox(seq, topic, payload) VALUES (?,?,?)"  # retain 0, kind 'event' by default
#: Event rows go in by multi-row INSERTs of these sizes (largest first): with AUTOINCREMENT, SQLite
#: reads and writes ``sqlite_sequence`` once per statement, so a statement per row (``executemany``)
#: did it once per row (≈ 14 % of storing the row).
_EVENT_CHUNKS = (64, 16, 4, 1)
_INSERT_EVENT_ROWS = {n: "INSERT INTO outbox(seq, topic, payload) VALUES " + ",".join(["(?,?,?)"] * n)
                      for n in _EVENT_CHUNKS}  # fmt: skip

#: The oldest rows of a kind. Only state and alarm rows are indexed by kind (``outbox_rare_kinds``;
#: an index entry per event row cost ~7 % of storing it); the oldest events come first in seq order.
_DROP_OLDEST: dict[str, str] = {
    kind: f"DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind='{kind}'{rare} ORDER BY seq LIMIT ?)"
    for kind, rare in (("state", " AND kind <> 'event'"), ("event", ""), ("alarm", " AND kind <> 'event'"))
}

#: Order in which kinds are sacrificed when the bound is reached.
_DROP_ORDER: tuple[Kind, ...] = ("state", "event", "alarm")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    payload: bytes
    retain: bool = False
    kind: Kind = "event"
    #: Rows with the same key replace each other while unpublished (retained state: the topic).
    coalesce_key: str | None = None


class OutboxRow(NamedTuple):
    """One stored message. A NamedTuple, not a frozen dataclass: one is built per MQTT message (a
    frozen dataclass's ``__init__`` costs several times more), and the tuple is the INSERT's parameters."""

    seq: int
    topic: str
    payload: bytes
    retain: bool
    kind: Kind


@dataclass(frozen=True, slots=True)
class AppendResult:
    depth: int
    dropped_state: int = 0
    dropped_events: int = 0
    became_full: bool = False


class Outbox:
    """SQLite-backed FIFO of MQTT messages awaiting a PUBACK."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_rows: int = 100_000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        rearm_ratio: float = 0.8,
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.rearm_ratio = rearm_ratio
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so one batch is one transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA + deadletters.SCHEMA)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        row = self._db.execute("SELECT value FROM meta WHERE key='event_seq'").fetchone()
        self._event_seq: int = int(row[0]) if row else 0
        self._stored_event_seq = self._event_seq
        self._full = False
        self.dropped_state = 0
        self.dropped_events = 0
        # seqs are assigned here (AUTOINCREMENT still records the highest in sqlite_sequence), so
        # appended rows can be mirrored in memory (:mod:`callbridge.bus.outbox_mirror`): the pump then
        # reads what it publishes without a query.
        last = self._db.execute(
            "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM outbox UNION ALL "
            "SELECT seq FROM sqlite_sequence WHERE name='outbox')"
        ).fetchone()[0]
        self._last_seq: int = int(last or 0)
        self._recent = RecentRows(self._last_seq)

    # --- sequence numbers for envelopes -------------------------------------------------------

    def next_event_seq(self) -> int:
        """The next envelope ``seq``; persisted with the next :meth:`append` (gaps are harmless)."""
        self._event_seq += 1
        return self._event_seq

    # --- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _batch(self, commit: bool) -> Iterator[None]:
        """One all-or-nothing batch (a savepoint), inside the open transaction or a new one.

        ``commit=False`` leaves the transaction open so that several batches share one commit (a
        commit costs far more than its rows); :meth:`commit`, :meth:`pending` and :meth:`close`
        commit it, so nothing uncommitted is ever handed out for publishing.
        """
        db = self._db
        if not db.in_transaction:
            # The first batch of a transaction needs no savepoint: rolling the transaction back
            # undoes exactly this batch (two statements fewer per event-loop iteration).
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._rollback()
                raise
        else:
            db.execute("SAVEPOINT batch")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK TO batch")
                db.execute("RELEASE batch")
                raise
            db.execute("RELEASE batch")
        if commit:
            db.execute("COMMIT")

    def _rollback(self) -> None:
        if self._db.in_transaction:  # some errors (SQLITE_FULL, …) have rolled it back already
            self._db.execute("ROLLBACK")

    def commit(self) -> None:
        """Make every batch appended so far durable (a no-op when nothing is pending)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def append(
        self,
        messages: Sequence[OutgoingMessage],
        *,
        enforce_bound: bool = True,
        acked: Sequence[int] = (),
        commit: bool = True,
    ) -> AppendResult:
        """Store a batch (all or nothing), then apply the size bound.

        ``enforce_bound=False`` is for the ``outbox.full`` alarm itself (once per episode): it may
        exceed the bound by its own rows rather than push out one more event. ``acked``: seqs whose
        PUBACK arrived, deleted in the same transaction. ``commit=False``: see :meth:`_batch`.
        """
        first = self._last_seq + 1
        rows = [OutboxRow(first + i, m.topic, m.payload, m.retain, m.kind) for i, m in enumerate(messages)]
        params = [(*row[:3], int(row.retain), row.kind, m.coalesce_key) for row, m in zip(rows, messages, strict=True)]
        keys = [m.coalesce_key for m in messages if m.coalesce_key is not None]
        return self._store(rows, _INSERT, params, keys, enforce_bound, acked, commit)

    def append_events(
        self, messages: Sequence[tuple[str, bytes]], *, acked: Sequence[int] = (), commit: bool = True
    ) -> AppendResult:
        """``append`` of event messages given as (topic, payload): what the publisher stores for every
        domain event, without an :class:`OutgoingMessage` per message."""
        seq = self._last_seq
        rows = [OutboxRow(seq + i, topic, payload, False, "event") for i, (topic, payload) in enumerate(messages, 1)]
        # Exact int/str/bytearray parameters skip sqlite3's per-value adapter lookup (a bytes or bool
        # value costs a registry probe and two attribute lookups each: ~8 % of storing the row).
        params = [(seq, topic, bytearray(payload)) for seq, topic, payload, _, _ in rows]
        return self._store(rows, _INSERT_EVENTS, params, (), True, acked, commit)

    def _store(
        self,
        new_rows: list[OutboxRow],
        insert: str,
        params: Sequence[tuple[Any, ...]],
        coalesce_keys: Sequence[str],
        enforce_bound: bool,
        acked: Sequence[int],
        commit: bool,
    ) -> AppendResult:
        if not new_rows:
            if acked:
                self.ack(acked, commit=commit)
            return AppendResult(depth=self._depth)
        db = self._db
        coalesced: list[int] = []
        with self._batch(commit):
            replaced = self._delete_seqs(acked) if acked else 0
            for key in coalesce_keys:
                cur = db.execute("DELETE FROM outbox WHERE coalesce_key=? RETURNING seq", (key,))
                coalesced.extend(seq for (seq,) in cur.fetchall())
            if insert is _INSERT_EVENTS:
                self._insert_event_rows(params)
            else:
                db.executemany(insert, params)
            replaced += len(coalesced)
            if self._event_seq != self._stored_event_seq:  # state-only batches leave it alone
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('event_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (self._event_seq,),
                )
            depth = self._depth - replaced + len(new_rows)
            dropped = {"state": 0, "event": 0, "alarm": 0}
            excess = depth - self.max_rows if enforce_bound else 0
            for kind in _DROP_ORDER:
                if excess <= 0:
                    break
                cur = db.execute(_DROP_OLDEST[kind], (excess,))
                dropped[kind] += cur.rowcount
                excess -= cur.rowcount
                depth -= cur.rowcount
        self._stored_event_seq = self._event_seq
        self._last_seq = new_rows[-1].seq
        self._depth = depth
        self._rearm()
        self._recent.forget(acked)
        self._recent.forget(coalesced)
        hit_bound = dropped["state"] + dropped["event"] + dropped["alarm"] > 0
        self._recent.add(new_rows, self._last_seq, dropped=hit_bound)
        self.dropped_state += dropped["state"]
        self.dropped_events += dropped["event"] + dropped["alarm"]
        became_full = hit_bound and not self._full
        if hit_bound:
            self._full = True
        return AppendResult(
            depth=depth,
            dropped_state=dropped["state"],
            dropped_events=dropped["event"] + dropped["alarm"],
            became_full=became_full,
        )

    def _insert_event_rows(self, params: Sequence[tuple[Any, ...]]) -> None:
        """The (seq, topic, payload) rows, in order, a chunk of up to 64 per statement (see _EVENT_CHUNKS)."""
        flat = [value for row in params for value in row]
        db, done, left = self._db, 0, len(params)
        for size in _EVENT_CHUNKS:
            statement = _INSERT_EVENT_ROWS[size]
            while left >= size:
                db.execute(statement, flat[3 * done : 3 * (done + size)])
                done += size
                left -= size

    def ack(self, seqs: Iterable[int], *, commit: bool = True) -> int:
        """Forget rows the broker acknowledged; returns how many rows were deleted."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._batch(commit):
            deleted = self._delete_seqs(seqs)
        self._recent.forget(seqs)
        self._depth -= deleted
        self._rearm()
        return deleted

    def _delete_seqs(self, seqs: Iterable[int]) -> int:
        """Delete rows by seq inside the caller's transaction, one range delete per contiguous run."""
        before = self._db.total_changes
        self._db.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", seq_runs(seqs))
        return self._db.total_changes - before

    def _rearm(self) -> None:
        if self._full and self._depth < self.max_rows * self.rearm_ratio:
            self._full = False

    # --- dead letters (see :mod:`callbridge.bus.deadletters`) ----------------------------------

    def dead_letter(self, seq: int, reason: str, at: float) -> DeadLetter | None:
        """Move row ``seq`` aside with ``reason`` (committed); None when it is gone (acknowledged meanwhile)."""
        with self._batch(commit=True):
            letter = deadletters.move_from_outbox(self._db, seq, reason, at)
        if letter is not None:
            self._recent.forget((seq,))
            self._depth -= 1
            self._rearm()
        return letter

    def requeue_retried(self) -> int:
        """Dead letters marked for a retry (``callbridge deadletters retry``) go back to the tail."""
        letters = deadletters.list_letters(self._db, retry_only=True)
        if not letters:
            return 0
        self.commit()
        messages = [OutgoingMessage(d.topic, d.payload, d.retain, _KINDS.get(d.kind, "event"),
                                    d.topic if d.kind == "state" else None) for d in letters]  # fmt: skip
        self.append(messages, enforce_bound=False, commit=False)
        deadletters.delete(self._db, (d.id for d in letters))
        self.commit()
        return len(letters)

    @property
    def dead_letters(self) -> int:
        return deadletters.count(self._db)

    # --- reading ------------------------------------------------------------------------------

    def pending(self, after_seq: int = 0, limit: int = 256) -> list[OutboxRow]:
        """Rows with ``seq > after_seq`` in publishing order (oldest first), committed first."""
        self.commit()
        out: list[OutboxRow] = []
        floor = self._recent.floor
        if after_seq < floor:
            cur = self._db.execute(
                "SELECT seq, topic, payload, retain, kind FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after_seq, floor, limit),
            )
            out = [
                OutboxRow(seq, topic, bytes(payload), bool(retain), kind) for seq, topic, payload, retain, kind in cur
            ]
            if len(out) == limit:
                return out
        return self._recent.read(after_seq, self._last_seq, limit, out)  # in flight and waiting

    @property
    def depth(self) -> int:
        """Rows not yet acknowledged by the broker."""
        return self._depth

    @property
    def full(self) -> bool:
        """True from the moment the bound dropped rows until the depth fell below the re-arm mark."""
        return self._full

    def close(self) -> None:
        self.commit()
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
