"""The records schema as numbered migrations, applied once each and remembered in ``schema_migrations``.

Rules for new migrations: append, never edit a released one; portable SQL only (TEXT, INTEGER,
DOUBLE PRECISION, ``{serial_pk}``), so SQLite and PostgreSQL stay identical. Times are epoch seconds
(DOUBLE PRECISION), JSON payloads are TEXT.
"""

from __future__ import annotations

import time

from callbridge.store.backend import Backend, render_ddl
from callbridge.store.feedback import MIGRATION as FEEDBACK_MIGRATION

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial records schema",
        (
            """CREATE TABLE events (
                seq {serial_pk},
                ts DOUBLE PRECISION NOT NULL,
                type TEXT NOT NULL,
                call_id TEXT,
                hotline TEXT,
                transfer_id TEXT,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX events_call_idx ON events (call_id)",
            "CREATE INDEX events_transfer_idx ON events (transfer_id)",
            "CREATE INDEX events_ts_idx ON events (ts)",
            """CREATE TABLE calls (
                call_id TEXT NOT NULL,
                hotline TEXT NOT NULL,
                caller_num TEXT,
                queue TEXT,
                agent TEXT,
                transfer_id TEXT,
                offered_ts DOUBLE PRECISION,
                queued_ts DOUBLE PRECISION,
                answered_ts DOUBLE PRECISION,
                ended_ts DOUBLE PRECISION,
                wait_s DOUBLE PRECISION,
                outcome TEXT,
                cause TEXT,
                PRIMARY KEY (call_id, hotline)
            )""",
            "CREATE INDEX calls_offered_idx ON calls (offered_ts)",
            "CREATE INDEX calls_caller_idx ON calls (caller_num)",
            """CREATE TABLE legs (
                call_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                hotline TEXT,
                number TEXT,
                agent TEXT,
                first_ts DOUBLE PRECISION,
                last_ts DOUBLE PRECISION,
                answered_ts DOUBLE PRECISION,
                ended_ts DOUBLE PRECISION,
                PRIMARY KEY (call_id, channel)
            )""",
            """CREATE TABLE transfers (
                transfer_id TEXT PRIMARY KEY,
                call_id TEXT,
                from_hotline TEXT,
                to_hotline TEXT,
                caller_num TEXT,
                agent TEXT,
                dest_agent TEXT,
                category TEXT,
                ticket TEXT,
                summary TEXT,
                mode TEXT,
                outcome TEXT NOT NULL,
                reason TEXT,
                number_verified INTEGER,
                seen_num TEXT,
                line TEXT,
                backup_line INTEGER NOT NULL DEFAULT 0,
                requested_ts DOUBLE PRECISION,
                ringing_ts DOUBLE PRECISION,
                answered_ts DOUBLE PRECISION,
                completed_ts DOUBLE PRECISION,
                failed_ts DOUBLE PRECISION,
                returned_ts DOUBLE PRECISION,
                from_closed_ts DOUBLE PRECISION,
                to_closed_ts DOUBLE PRECISION
            )""",
            "CREATE INDEX transfers_call_idx ON transfers (call_id)",
            "CREATE INDEX transfers_requested_idx ON transfers (requested_ts)",
            """CREATE TABLE conferences (
                id {serial_pk},
                room TEXT NOT NULL,
                call_id TEXT,
                hotline TEXT,
                transfer_id TEXT,
                started_ts DOUBLE PRECISION,
                ended_ts DOUBLE PRECISION,
                agent_left_ts DOUBLE PRECISION,
                joins INTEGER NOT NULL DEFAULT 0,
                leaves INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX conferences_room_idx ON conferences (room, ended_ts)",
            "CREATE INDEX conferences_call_idx ON conferences (call_id)",
            """CREATE TABLE queue_waits (
                id {serial_pk},
                call_id TEXT,
                hotline TEXT,
                queue TEXT,
                joined_ts DOUBLE PRECISION NOT NULL,
                left_ts DOUBLE PRECISION,
                outcome TEXT,
                wait_s DOUBLE PRECISION
            )""",
            "CREATE INDEX queue_waits_call_idx ON queue_waits (call_id)",
            """CREATE TABLE overflows (
                id {serial_pk},
                hotline TEXT,
                queue TEXT,
                target TEXT,
                reason TEXT,
                started_ts DOUBLE PRECISION NOT NULL,
                ended_ts DOUBLE PRECISION
            )""",
            """CREATE TABLE backup_line_uses (
                id {serial_pk},
                ts DOUBLE PRECISION NOT NULL,
                call_id TEXT,
                transfer_id TEXT,
                from_hotline TEXT,
                to_hotline TEXT,
                line TEXT,
                reason TEXT
            )""",
            """CREATE TABLE nuisance_flags (
                id {serial_pk},
                ts DOUBLE PRECISION NOT NULL,
                hotline TEXT,
                caller_num TEXT,
                call_id TEXT,
                reason TEXT
            )""",
            """CREATE TABLE commands (
                id {serial_pk},
                ts DOUBLE PRECISION NOT NULL,
                call_id TEXT,
                hotline TEXT,
                command TEXT,
                source TEXT,
                agent TEXT,
                data TEXT NOT NULL
            )""",
        ),
    ),
    (
        2,
        "three-way legs callbridge called in",
        (
            # A leg callbridge originates into a three-way room is a call of its own at the PBX (its own
            # Linkedid): remembered here from threeway.leg_called, which comes before the leg's call.offered,
            # so the leg's calls row is marked (calls.kind) and linked to its transfer, not counted as a citizen's.
            """CREATE TABLE called_legs (
                call_id TEXT PRIMARY KEY,
                transfer_id TEXT,
                to_hotline TEXT,
                line TEXT,
                called_ts DOUBLE PRECISION NOT NULL
            )""",
            "ALTER TABLE calls ADD COLUMN kind TEXT",
        ),
    ),
    FEEDBACK_MIGRATION,  # 3: the case loop's reports (callbridge/store/feedback.py)
)

LATEST_VERSION = MIGRATIONS[-1][0]


def applied_versions(db: Backend) -> list[int]:
    rows = db.query("SELECT version FROM schema_migrations ORDER BY version")
    return [int(r["version"]) for r in rows]


#: PostgreSQL advisory-lock key: daemons starting together against one database migrate one at a time.
MIGRATION_LOCK_KEY = 0x63627265  # "cbre"


def migrate(db: Backend) -> list[int]:
    """Apply every migration not applied yet, each in its own transaction; return the versions applied."""
    if db.dialect != "postgres":
        return _migrate(db)  # SQLite: BEGIN IMMEDIATE already serialises writers of the file
    db.query("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK_KEY,))
    try:
        return _migrate(db)
    finally:
        db.query("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK_KEY,))


def _migrate(db: Backend) -> list[int]:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts DOUBLE PRECISION NOT NULL)"
    )
    done = set(applied_versions(db))
    applied: list[int] = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        with db.transaction():
            for stmt in statements:
                db.execute(render_ddl(stmt, db.dialect))
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
        applied.append(version)
    return applied
