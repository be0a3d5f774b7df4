"""The records store: write events, query calls and timelines, read a period for the KPIs.

One class over either backend (:class:`SqliteBackend` by default, :class:`PostgresBackend` when a DSN is
configured); the SQL is the same. Methods are synchronous and thread-safe — the asyncio side calls them
through :class:`~callbridge.store.writer.RecordWriter` or ``asyncio.to_thread``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from callbridge.domain import DomainEvent
from callbridge.store.backend import Backend, PostgresBackend, Row, SqliteBackend
from callbridge.store.kpi import NuisanceRow, OverflowRow, PeriodRecords, TransferRow
from callbridge.store.offers import OFFER_EVENT_TYPES, offers_of
from callbridge.store.periods import iso
from callbridge.store.projection import THREEWAY_LEG, plan
from callbridge.store.record import EventRecord
from callbridge.store.schema import applied_versions, migrate

#: Columns of a call summary, in CSV order.
CALL_COLUMNS = (
    "call_id", "hotline", "caller_num", "queue", "agent", "transfer_id", "offered_at", "answered_at", "ended_at",
    "wait_s", "outcome", "cause", "transfers", "kind",
)  # fmt: skip
# ``kind`` came last (new columns go last): NULL for a citizen's call, ``threeway_leg`` for a line callbridge
# called into a three-way room (part of its transfer; not counted in the KPIs).


#: table → the time column retention is judged by
RETENTION_COLUMNS: dict[str, str] = {
    "events": "ts", "calls": "offered_ts", "legs": "first_ts", "transfers": "requested_ts",
    "conferences": "started_ts", "queue_waits": "joined_ts", "overflows": "started_ts",
    "backup_line_uses": "ts", "nuisance_flags": "ts", "commands": "ts", "called_legs": "called_ts",
    "handover_feedback": "ts",
}  # fmt: skip


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _with_iso(row: Row) -> Row:
    """``*_ts`` epoch columns become ``*_at`` ISO strings (what people and spreadsheets read)."""
    out: Row = {}
    for key, value in row.items():
        if key.endswith("_ts"):
            out[key[:-3] + "_at"] = iso(value)
        else:
            out[key] = value
    return out


class RecordStore:
    """Records of calls, legs, transfers, conferences, queue waits, overflows, backup lines, nuisance, commands."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        migrate(backend)

    @classmethod
    def sqlite(cls, path: str | Path) -> RecordStore:
        return cls(SqliteBackend(path))

    @classmethod
    def postgres(cls, dsn: str) -> RecordStore:
        return cls(PostgresBackend(dsn))

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    def schema_versions(self) -> list[int]:
        return applied_versions(self.backend)

    def close(self) -> None:
        self.backend.close()

    # --- writing -----------------------------------------------------------------------------------------

    def write(self, events: Iterable[DomainEvent | EventRecord]) -> int:
        """Record a batch of events in one transaction; return how many were written."""
        records = [EventRecord.of(e) for e in events]
        if not records:
            return 0
        with self.backend.transaction():
            for rec in records:
                for sql, params in plan(rec):
                    self.backend.execute(sql, params)
        return len(records)

    def prune(self, before: float) -> dict[str, int]:
        """Delete records older than ``before`` (retention); return the rows left per table."""
        with self.backend.transaction():
            for table, column in RETENTION_COLUMNS.items():
                self.backend.execute(f"DELETE FROM {table} WHERE {column} < ?", (before,))
        return {
            t: int(self.backend.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]) for t in RETENTION_COLUMNS
        }

    # --- queries -----------------------------------------------------------------------------------------

    def search_calls(
        self,
        *,
        number: str | None = None,
        start: float | None = None,
        end: float | None = None,
        hotline: str | None = None,
        call_id: str | None = None,
        limit: int = 1000,
    ) -> list[Row]:
        """Call presentations (one row per call and hotline), oldest first, as :data:`CALL_COLUMNS` dicts.

        ``number`` matches the caller's number exactly (also when it was carried by a transfer);
        ``hotline`` matches calls offered to it and calls transferred from or to it; ``[start, end)`` is
        on the offer time.
        """
        where: list[str] = []
        params: list[Any] = []
        if number:
            where.append("(c.caller_num = ? OR c.call_id IN (SELECT call_id FROM transfers WHERE caller_num = ?))")
            params += [number, number]
        if hotline:
            where.append(
                "(c.hotline = ? OR c.call_id IN"
                " (SELECT call_id FROM transfers WHERE from_hotline = ? OR to_hotline = ?))"
            )
            params += [hotline, hotline, hotline]
        if call_id:
            where.append("c.call_id = ?")
            params.append(call_id)
        if start is not None:
            where.append("c.offered_ts >= ?")
            params.append(start)
        if end is not None:
            where.append("c.offered_ts < ?")
            params.append(end)
        sql = (
            "SELECT c.call_id, c.hotline, c.caller_num, c.queue, c.agent, c.transfer_id, c.offered_ts,"
            " c.answered_ts, c.ended_ts, c.wait_s, c.outcome, c.cause, c.kind,"
            " (SELECT COUNT(*) FROM transfers t WHERE t.call_id = c.call_id) AS transfers FROM calls c"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY c.offered_ts, c.call_id, c.hotline LIMIT ?"
        )
        rows = self.backend.query(sql, [*params, limit])
        return [_with_iso(r) | {"transfers": int(r["transfers"])} for r in rows]

    def call_timeline(self, call_id: str) -> Row | None:
        """Everything about a call and both sides of its transfers, or None if the call is unknown.

        Transfers link calls by ``transfer_id``: the receiving side may have its own call id (a new
        Linkedid on another PBX) or share the original one; both are followed, in both directions.
        """
        call_ids, xfer_ids = {call_id}, set[str]()
        for _ in range(4):  # a chain of transfers 12345 → 110 → 120 is followed a few hops
            before = (len(call_ids), len(xfer_ids))
            ci, xi = sorted(call_ids), sorted(xfer_ids)
            q = (
                f"SELECT transfer_id FROM transfers WHERE call_id IN ({_marks(len(ci))})"
                f" UNION SELECT transfer_id FROM calls WHERE call_id IN ({_marks(len(ci))}) AND transfer_id IS NOT NULL"
                f" UNION SELECT transfer_id FROM events WHERE call_id IN ({_marks(len(ci))})"
                " AND transfer_id IS NOT NULL"
            )
            xfer_ids |= {r["transfer_id"] for r in self.backend.query(q, [*ci, *ci, *ci])}
            xi = sorted(xfer_ids)
            if xi:
                q = (
                    f"SELECT call_id FROM transfers WHERE transfer_id IN ({_marks(len(xi))}) AND call_id IS NOT NULL"
                    f" UNION SELECT call_id FROM calls WHERE transfer_id IN ({_marks(len(xi))})"
                    f" UNION SELECT call_id FROM events WHERE transfer_id IN ({_marks(len(xi))})"
                    " AND call_id IS NOT NULL"
                )
                call_ids |= {r["call_id"] for r in self.backend.query(q, [*xi, *xi, *xi])}
            if (len(call_ids), len(xfer_ids)) == before:
                break
        ci, xi = sorted(call_ids), sorted(xfer_ids)
        by_call = f"call_id IN ({_marks(len(ci))})"
        events = self.backend.query(
            f"SELECT seq, ts, type, call_id, hotline, transfer_id, data FROM events WHERE {by_call}"
            + (f" OR transfer_id IN ({_marks(len(xi))})" if xi else "")
            + " ORDER BY ts, seq",
            [*ci, *xi],
        )
        calls = self.backend.query(f"SELECT * FROM calls WHERE {by_call} ORDER BY offered_ts", ci)
        if not events and not calls:
            return None
        transfers = (
            self.backend.query(
                f"SELECT * FROM transfers WHERE transfer_id IN ({_marks(len(xi))}) ORDER BY requested_ts", xi
            )
            if xi
            else []
        )
        return {
            "call_id": call_id,
            "linked_call_ids": ci,
            "calls": [_with_iso(r) for r in calls],
            "legs": [
                _with_iso(r) for r in self.backend.query(f"SELECT * FROM legs WHERE {by_call} ORDER BY first_ts", ci)
            ],
            "transfers": [_present_transfer(r) for r in transfers],
            "conferences": [
                _with_iso(r)
                for r in self.backend.query(
                    f"SELECT * FROM conferences WHERE {by_call}"
                    + (f" OR transfer_id IN ({_marks(len(xi))})" if xi else "")
                    + " ORDER BY started_ts, id",
                    [*ci, *xi],
                )
            ],
            "queue_waits": [
                _with_iso(r)
                for r in self.backend.query(f"SELECT * FROM queue_waits WHERE {by_call} ORDER BY joined_ts, id", ci)
            ],
            "backup_line_uses": [
                _with_iso(r)
                for r in self.backend.query(f"SELECT * FROM backup_line_uses WHERE {by_call} ORDER BY ts, id", ci)
            ],
            "events": [
                {
                    "seq": r["seq"],
                    "ts": r["ts"],
                    "at": iso(r["ts"]),
                    "type": r["type"],
                    "call_id": r["call_id"],
                    "hotline": r["hotline"],
                    "data": orjson.loads(r["data"]),
                }
                for r in events
            ],
        }

    def period_records(self, start: float, end: float) -> PeriodRecords:
        """Rows of ``[start, end)`` for :func:`callbridge.store.kpi.compute`.

        ``calls`` are the presentations offered in the period as :class:`~callbridge.store.offers.OfferBook`
        makes them from the recorded events — the live board's book, so both count alike (a transfer in is
        offered to the receiving hotline; overflow is no abandon; three-way legs are no offers)."""
        span = (start, end)
        offers = [o for o in offers_of(self._offer_events(start, end), self._legs(start, end))
                  if start <= o.offered_ts < end]  # fmt: skip
        transfers = self.backend.query(
            "SELECT transfer_id, from_hotline, to_hotline, outcome, requested_ts, number_verified, backup_line"
            " FROM transfers WHERE requested_ts >= ? AND requested_ts < ? ORDER BY requested_ts",
            span,
        )
        overflows = self.backend.query(
            "SELECT hotline, started_ts, ended_ts FROM overflows"
            " WHERE started_ts < ? AND (ended_ts IS NULL OR ended_ts > ?)",
            (end, start),
        )
        nuisance = self.backend.query(
            "SELECT hotline, caller_num, ts FROM nuisance_flags WHERE ts >= ? AND ts < ? AND caller_num IS NOT NULL",
            span,
        )
        return PeriodRecords(
            start=start,
            end=end,
            calls=tuple(o.row() for o in offers),
            transfers=tuple(
                TransferRow(
                    transfer_id=r["transfer_id"],
                    from_hotline=r["from_hotline"] or "",
                    to_hotline=r["to_hotline"] or "",
                    outcome=r["outcome"],
                    requested_ts=r["requested_ts"],
                    number_verified=None if r["number_verified"] is None else bool(r["number_verified"]),
                    backup_line=bool(r["backup_line"]),
                )
                for r in transfers
            ),
            overflows=tuple(
                OverflowRow(hotline=r["hotline"] or "", started_ts=r["started_ts"], ended_ts=r["ended_ts"])
                for r in overflows
            ),
            nuisance=tuple(
                NuisanceRow(hotline=r["hotline"] or "", caller_num=r["caller_num"], ts=r["ts"]) for r in nuisance
            ),
        )


    def _offer_events(self, start: float, end: float) -> Iterator[EventRecord]:
        """The events the offer book reads for presentations made in ``[start, end)``, in recorded order: those
        of the period, and every one of the calls the period has events of — before it too (so a call offered
        or a transfer that rang before the period is known as such, and not offered again by its answer) and
        after it (the outcomes of the period's offers)."""
        types = ", ".join(f"'{t}'" for t in OFFER_EVENT_TYPES)
        seen = f"SELECT call_id FROM events WHERE ts >= ? AND ts < ? AND type IN ({types}) AND call_id IS NOT NULL"
        rows = self.backend.query(
            f"SELECT ts, type, call_id, hotline, data FROM events WHERE type IN ({types})"
            f" AND ((ts >= ? AND ts < ?) OR call_id IN ({seen})) ORDER BY seq",
            (start, end, start, end),
        )
        for r in rows:
            yield EventRecord(r["type"], float(r["ts"]), r["call_id"], r["hotline"], orjson.loads(r["data"]))

    def _legs(self, start: float, end: float) -> list[str]:
        """Three-way legs of the period (also one whose announcement came just before the period began)."""
        rows = self.backend.query(
            f"SELECT call_id FROM calls WHERE kind = '{THREEWAY_LEG}' AND offered_ts >= ? AND offered_ts < ?",
            (start, end),
        )
        return [r["call_id"] for r in rows]


def _present_transfer(row: Row) -> Row:
    out = _with_iso(row)
    out["number_verified"] = None if row["number_verified"] is None else bool(row["number_verified"])
    out["backup_line"] = bool(row["backup_line"])
    # 双边办结: the sending side handed over and the receiving side finished the call.
    out["both_sides_closed"] = row["from_closed_ts"] is not None and row["to_closed_ts"] is not None
    return out


def open_record_store(path: str | Path | None = None, dsn: str | None = None) -> RecordStore:
    """PostgreSQL when ``dsn`` is set, else SQLite at ``path`` (default: the settings' default path)."""
    if dsn:
        return RecordStore.postgres(dsn)
    return RecordStore.sqlite(path or "callbridge-records.sqlite3")


def rows_to_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """CSV text (header + rows) — what the CLI and ``?format=csv`` return."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue()
