"""The durable outbox: every MQTT message is written here before it is published.

Pure SQLite, no asyncio. The publisher calls it from the event loop on purpose: WAL mode with
``synchronous=NORMAL`` makes a commit a write into the WAL file without an fsync (only checkpoints
fsync), so a batch of a few hundred rows costs well under a millisecond. Moving each call to a thread
(``asyncio.to_thread``) would cost more in hand-offs than the calls take, and would need a lock around
the connection. Keep batches bounded (the publisher reads at most a few hundred rows at a time).

Durability: a row survives a crash of the process as soon as :meth:`Outbox.append` returns; with
``synchronous=NORMAL`` a *power loss* may lose the last transactions since the latest checkpoint
(set ``synchronous="FULL"`` to trade throughput for that).

Life of a row: appended (one transaction per batch) → read in ``seq`` order and published → deleted
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

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["event", "state", "alarm"]

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
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

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


@dataclass(frozen=True, slots=True)
class OutboxRow:
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
        self._db.executescript(_SCHEMA)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        row = self._db.execute("SELECT value FROM meta WHERE key='event_seq'").fetchone()
        self._event_seq: int = int(row[0]) if row else 0
        self._full = False
        self.dropped_state = 0
        self.dropped_events = 0

    # --- sequence numbers for envelopes -------------------------------------------------------

    def next_event_seq(self) -> int:
        """The next envelope ``seq``; persisted with the next :meth:`append` (gaps are harmless)."""
        self._event_seq += 1
        return self._event_seq

    # --- writing ------------------------------------------------------------------------------

    def append(self, messages: Sequence[OutgoingMessage], *, enforce_bound: bool = True) -> AppendResult:
        """Store a batch in one transaction, then apply the size bound.

        ``enforce_bound=False`` is for the ``outbox.full`` alarm itself (once per episode): it may
        exceed the bound by its own rows rather than push out one more event.
        """
        if not messages:
            return AppendResult(depth=self._depth)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            replaced = 0
            for msg in messages:
                if msg.coalesce_key is not None:
                    cur = db.execute("DELETE FROM outbox WHERE coalesce_key=?", (msg.coalesce_key,))
                    replaced += cur.rowcount
            db.executemany(
                "INSERT INTO outbox(topic, payload, retain, kind, coalesce_key) VALUES (?,?,?,?,?)",
                [(m.topic, m.payload, int(m.retain), m.kind, m.coalesce_key) for m in messages],
            )
            db.execute(
                "INSERT INTO meta(key, value) VALUES ('event_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (self._event_seq,),
            )
            depth = self._depth - replaced + len(messages)
            dropped = {"state": 0, "event": 0, "alarm": 0}
            excess = depth - self.max_rows if enforce_bound else 0
            for kind in _DROP_ORDER:
                if excess <= 0:
                    break
                cur = db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind=? ORDER BY seq LIMIT ?)",
                    (kind, excess),
                )
                dropped[kind] += cur.rowcount
                excess -= cur.rowcount
                depth -= cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._depth = depth
        self.dropped_state += dropped["state"]
        self.dropped_events += dropped["event"] + dropped["alarm"]
        hit_bound = any(dropped.values())
        became_full = hit_bound and not self._full
        if hit_bound:
            self._full = True
        return AppendResult(
            depth=depth,
            dropped_state=dropped["state"],
            dropped_events=dropped["event"] + dropped["alarm"],
            became_full=became_full,
        )

    def ack(self, seqs: Iterable[int]) -> int:
        """Forget rows the broker acknowledged; returns how many rows were deleted."""
        params = [(s,) for s in seqs]
        if not params:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE seq=?", params)
            deleted = db.total_changes - before
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._depth -= deleted
        if self._full and self._depth < self.max_rows * self.rearm_ratio:
            self._full = False
        return deleted

    # --- reading ------------------------------------------------------------------------------

    def pending(self, after_seq: int = 0, limit: int = 256) -> list[OutboxRow]:
        """Rows with ``seq > after_seq`` in publishing order (oldest first)."""
        cur = self._db.execute(
            "SELECT seq, topic, payload, retain, kind FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [OutboxRow(seq, topic, bytes(payload), bool(retain), kind) for seq, topic, payload, retain, kind in cur]

    @property
    def depth(self) -> int:
        """Rows not yet acknowledged by the broker."""
        return self._depth

    @property
    def full(self) -> bool:
        """True from the moment the bound dropped rows until the depth fell below the re-arm mark."""
        return self._full

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
