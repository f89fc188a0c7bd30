"""Tables of the embedded SQLite backend."""

from __future__ import annotations

__all__ = ["PRAGMAS", "SCHEMA"]

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=15000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-16000",
    # A checkpoint rewinds the WAL but leaves the file at its peak size; this truncates it to
    # one checkpoint's worth (app/backends/sqlite_wal.py's CHECKPOINT_PAGES of 4 KiB), which
    # the next interval refills without growing it. At 8 MiB a 100,000-chain run ended at
    # 21 MB against 17 MB, past issue 17's 20 MB, at the same rate (README, Performance).
    "PRAGMA journal_size_limit=4194304",
)

# `due` doubles as the lease: claiming sets it to now + lease, so a delivery whose process
# died becomes due again by itself. Settled deliveries are deleted, which bounds the table.
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_step_due ON deliveries (step, due);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    traceback TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup (
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (topic, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    grp TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (grp, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cron_fires (
    step TEXT PRIMARY KEY,
    tick REAL NOT NULL,
    fired_at REAL NOT NULL
);
-- Spans: app/backends/sqlite_spans.py (SPAN_SCHEMA).
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    step TEXT,
    trace_id TEXT,
    span_id TEXT,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id);
-- One row, rewritten by /readyz after a write failed for a storage reason: the probe tells
-- when the file takes writes again, even if no request or run comes to write.
CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
"""
