"""The rows the outbox appended lately, kept in memory so that the pump reads what it publishes without a query.

Split from :mod:`callbridge.bus.outbox` (pure bookkeeping, no SQLite). Invariant, kept by the outbox:
every row in the table with ``seq > floor`` is in the mirror (in seq order); rows at or below the floor
(found at start-up, or after the mirror was reset) are read back from SQLite.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callbridge.bus.outbox import OutboxRow

#: Rows mirrored in memory at most (about 0.5 KiB each); beyond, new rows are read back from SQLite.
RECENT_MAX = 20_000

_seq_of_row = operator.itemgetter(0)


class RecentRows:
    """seq → row of the rows appended since :attr:`floor`, with a low-water hint for reading in order."""

    __slots__ = ("_low", "_rows", "floor")

    def __init__(self, last_seq: int) -> None:
        self.floor = last_seq
        self._rows: dict[int, OutboxRow] = {}
        #: No row of the mirror has a smaller seq (a hint that only moves up, see :meth:`read`).
        self._low = last_seq + 1

    def add(self, rows: Sequence[OutboxRow], last_seq: int, *, dropped: bool) -> None:
        """Mirror rows just appended; after a drop by the bound, or when full, start again above ``last_seq``."""
        if dropped or len(self._rows) + len(rows) > RECENT_MAX:
            self.reset(last_seq)  # drops are rare; the bound-policy rows are then read from SQLite
        else:
            self._rows.update(zip(map(_seq_of_row, rows), rows, strict=True))

    def forget(self, seqs: Iterable[int]) -> None:
        pop = self._rows.pop
        for seq in seqs:
            pop(seq, None)

    def reset(self, last_seq: int) -> None:
        self.floor = last_seq
        self._low = last_seq + 1
        self._rows.clear()

    def read(self, after_seq: int, last_seq: int, limit: int, out: list[OutboxRow]) -> list[OutboxRow]:
        """Append to ``out`` the mirrored rows with ``seq > after_seq`` (in order) until it holds ``limit``.

        Walks the seqs after ``after_seq`` rather than the mirror from its start: with thousands in
        flight, skipping them would cost more than the rows read. Gaps are rare (coalesced state rows).
        """
        rows = self._rows
        low = self._low
        while low <= last_seq and low not in rows:  # amortised: ``low`` only moves up
            low += 1
        self._low = low
        seq = max(after_seq + 1, low)
        get = rows.get
        while seq <= last_seq:
            row = get(seq)
            seq += 1
            if row is not None:
                out.append(row)
                if len(out) == limit:
                    break
        return out


def seq_runs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous (first, last) runs of ``seqs`` (PUBACKs mostly come in order: usually one run)."""
    unique = set(seqs)
    if not unique:
        return []
    low, high = min(unique), max(unique)
    if high - low + 1 == len(unique):
        return [(low, high)]  # the usual case: one gap-free run, no per-seq work
    runs: list[tuple[int, int]] = []
    for seq in sorted(unique):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs
