"""Dead letters: outbox rows the broker will not take, kept aside so that delivery goes on (pure SQLite).

A row becomes a dead letter when the broker refuses it (an MQTT 5 PUBACK with a failure reason code),
when it cannot be sent at all (a topic no broker accepts), or when the broker dropped the connection
several times in a row while that row was the oldest one in flight (mosquitto drops a client for a
malformed packet instead of answering). The row moves from ``outbox`` to ``dead_letters`` in the same
SQLite file, with the reason; the publisher publishes an ``outbox.dead_letter`` alarm event.

``callbridge deadletters`` lists, retries and drops them, also while the daemon runs: ``retry`` only
marks a letter, and the daemon's publisher moves marked letters back to the tail of its outbox (it
owns the outbox's sequence numbers) within a few seconds, or at its next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'event',
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    retry INTEGER NOT NULL DEFAULT 0
);
"""

_COLUMNS = "id, seq, topic, payload, retain, kind, reason, at, retry"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    seq: int  #: its outbox seq when it was set aside
    topic: str
    payload: bytes
    retain: bool
    kind: str
    reason: str
    at: float
    retry: bool  #: a retry was asked for and the daemon has not taken it back yet

    def summary(self) -> dict[str, object]:
        """JSON-friendly: the topic escaped (it may hold the very characters that got it refused)."""
        return {"id": self.id, "seq": self.seq, "topic": ascii(self.topic)[1:-1][:300], "kind": self.kind,
                "bytes": len(self.payload), "reason": self.reason, "at": self.at, "retry": self.retry}  # fmt: skip


def _letters(cur: sqlite3.Cursor) -> list[DeadLetter]:
    return [
        DeadLetter(i, seq, topic, bytes(payload), bool(retain), kind, reason, at, bool(retry))
        for i, seq, topic, payload, retain, kind, reason, at, retry in cur
    ]


def move_from_outbox(db: sqlite3.Connection, seq: int, reason: str, at: float) -> DeadLetter | None:
    """Move outbox row ``seq`` to the dead letters (inside the caller's transaction)."""
    cur = db.execute(
        f"INSERT INTO dead_letters(seq, topic, payload, retain, kind, reason, at) "
        f"SELECT seq, topic, payload, retain, kind, ?, ? FROM outbox WHERE seq=? RETURNING {_COLUMNS}",
        (reason, at, seq),
    )
    letters = _letters(cur)
    if not letters:
        return None
    db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
    return letters[0]


def list_letters(db: sqlite3.Connection, *, retry_only: bool = False) -> list[DeadLetter]:
    where = " WHERE retry=1" if retry_only else ""
    return _letters(db.execute(f"SELECT {_COLUMNS} FROM dead_letters{where} ORDER BY id"))


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])


def delete(db: sqlite3.Connection, ids: Iterable[int]) -> int:
    before = db.total_changes
    db.executemany("DELETE FROM dead_letters WHERE id=?", [(i,) for i in ids])
    return db.total_changes - before


class DeadLetterStore:
    """The dead letters of an outbox file, for the CLI (its own connection; safe beside the daemon)."""

    def __init__(self, path: str | Path) -> None:
        if not Path(path).exists():
            raise FileNotFoundError(f"no outbox at {path}")
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def letters(self) -> list[DeadLetter]:
        return list_letters(self._db)

    def _ids(self, ids: Sequence[int] | None) -> list[int]:
        return [d.id for d in self.letters()] if ids is None else list(ids)

    def mark_retry(self, ids: Sequence[int] | None = None) -> int:
        """Ask the daemon to publish these letters again (all with ``None``); returns how many were marked."""
        before = self._db.total_changes
        self._db.executemany("UPDATE dead_letters SET retry=1 WHERE id=?", [(i,) for i in self._ids(ids)])
        return self._db.total_changes - before

    def drop(self, ids: Sequence[int] | None = None) -> int:
        """Forget these letters for good (all with ``None``); returns how many were deleted."""
        return delete(self._db, self._ids(ids))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DeadLetterStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
