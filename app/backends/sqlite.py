"""The embedded default backend: one SQLite file in WAL mode.

Database calls run on the event loop's own connection while the write lock is free (a commit
in WAL mode with `synchronous=NORMAL` does not wait on the disk), and move to one dedicated
thread with its own connection while another process holds the lock, so the loop never waits
on it; checkpoints run on that thread too (`sqlite_wal`). `BEGIN IMMEDIATE` takes the write
lock up front, which serialises writers of several processes on one file without deadlocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from app.backends import sqlite_keys as keys
from app.backends import sqlite_rates as rates
from app.backends.base import Backend, dump_json, valid_ids
from app.backends.codec import dump_payload, load
from app.backends.sqlite_bulk import delete_claimed, insert_rows
from app.backends.sqlite_queue_views import SQLiteQueueViews
from app.backends.sqlite_records import SQLiteRecords
from app.backends.sqlite_retention import release_free_pages, trim
from app.backends.sqlite_schema import PRAGMAS, SCHEMA
from app.backends.sqlite_spans import SPAN_SCHEMA, migrate_span_rows, store_spans
from app.backends.sqlite_state import SQLiteState
from app.backends.sqlite_vacuum import NeverShrinksWarning, never_shrinks_warning
from app.backends.sqlite_wal import WalCheckpoints
from app.errors import BackendError, BackendUnavailable
from app.settings import Settings
from app.types import Batch, Delivery, Message

__all__ = ["SQLiteBackend"]

log = logging.getLogger("stepline.sqlite")

T = TypeVar("T")
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_INSERT_HEAD = keys.INSERT.partition(" VALUES ")[0]  # many rows per statement: sqlite_bulk


class _Busy(Exception):
    """Another connection holds the write lock: retry where waiting does not block the loop."""


class SQLiteBackend(SQLiteState, SQLiteRecords, SQLiteQueueViews, NeverShrinksWarning, Backend):
    name = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.path = settings.db
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stepline-db")
        self._conn: sqlite3.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        self._in_thread = 0
        self._wal = WalCheckpoints(self)
        self._rate_windows = rates.RateWindows()

    # -- plumbing ----------------------------------------------------------------------------
    # A call first runs on the event loop's own connection, whose busy timeout is zero: with
    # no other writer it commits in well under a millisecond, without a thread hand-off. When
    # another process holds the write lock, it runs on the database thread instead, which
    # waits for the lock without blocking the loop.
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._inline is not None and not self._in_thread:
            try:
                return self._call(self._inline, fn)
            except _Busy:
                pass
        loop = asyncio.get_running_loop()
        self._in_thread += 1
        try:
            return await loop.run_in_executor(self._executor, self._call, self._conn, fn)
        finally:
            self._in_thread -= 1

    def _call(self, conn: sqlite3.Connection | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if conn is None:
            raise BackendUnavailable(f"the SQLite database {self.path} is not open")
        try:
            return fn(conn)
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.rollback()
            if conn is self._inline and exc.sqlite_errorcode in _BUSY:
                raise _Busy from exc
            if (
                not isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError)
                and type(exc) is not sqlite3.DatabaseError
            ):
                # Integrity, data or programming errors belong to one write, not the file.
                raise BackendError(f"SQLite database {self.path} refused a write: {exc}") from exc
            # Disk full, read-only, I/O error, "database disk image is malformed": the file
            # itself is failing, for every write until it is fixed.
            self.storage_error = f"SQLite database {self.path}: {exc}"
            self.storage_code = exc.sqlite_errorcode
            raise BackendUnavailable(self.storage_error) from exc

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        def wrapped(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return result

        return wrapped

    def _connect(self, busy_ms: int, *, new_file: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if new_file:  # before WAL mode writes the header; see sqlite_retention for older files
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        for pragma in PRAGMAS:
            conn.execute(pragma)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute(f"PRAGMA synchronous={self.settings.sqlite_synchronous}")
        conn.execute(f"PRAGMA wal_autocheckpoint={1000 if busy_ms else 0}")  # see sqlite_wal
        return conn

    async def open(self) -> None:
        if self._conn is not None:
            return

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            conn = self._connect(15_000, new_file=new_file)
            conn.executescript(SCHEMA + SPAN_SCHEMA)
            keys.add_key_columns(conn)
            migrate_span_rows(conn)
            self.never_shrinks = never_shrinks_warning(conn, self.path)  # given by serving()
            return conn

        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(self._executor, connect)
            self._inline = self._connect(0)
            self._wal.open()  # counted from now on as a user of the -shm descriptor (sqlite_wal)
        except (sqlite3.OperationalError, OSError) as exc:
            raise BackendUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            # Not worth retrying: the file is there but is not (or no longer) a database.
            raise BackendError(
                f"cannot open SQLite database {self.path}: {exc}; move the file "
                "away (or restore it from a backup) or point STEPLINE_DB at "
                "another file"
            ) from exc

    async def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._wal.close()  # after the connections: its close() would drop their locks
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            return await self._run(lambda c: c.execute("SELECT 1").fetchone()[0] == 1)
        except Exception:
            return False

    # -- queue -------------------------------------------------------------------------------
    async def write(self, batch: Batch) -> None:
        if batch:
            await self._run(self._tx(lambda c: self._write(c, batch)))
            self.storage_error = None  # only a real write proves the store takes writes
            if (behind := self._wal.committed()) is not None:
                await self._wal.wait_for(behind)

    def _write(self, conn: sqlite3.Connection, batch: Batch) -> None:
        now = self.clock()
        if batch.messages:
            self._enqueue(conn, batch.messages, now)
        # An outcome settles its row only at its claimed attempt (stale runs: Backend.write).
        acked: list[int] = []
        acked_at: list[int] = []  # the attempt each was claimed with
        retried: list[tuple[float, int, float | None, int, int]] = []
        released: list[tuple[float, int, float | None, int, int]] = []
        dead: list[tuple[Any, ...]] = []
        for o in batch.outcomes:
            d = o.delivery
            if o.status == "ok":
                acked.append(int(d.id))
                acked_at.append(d.attempt)
                continue
            if o.status == "retry":
                # A `Retry` stores one less (not counted); its first run is kept: the `Retry`
                # window counts from it (app/retries.py).
                waits = released if self.ordered.get(d.step) else retried
                stored = max(d.attempt - 1, 0) if o.uncounted else d.attempt
                waits.append((o.retry_at or now, stored, d.first_run, int(d.id), d.attempt))
                continue
            acked.append(int(d.id))
            acked_at.append(d.attempt)
            error, tb = o.error or "", o.traceback or ""
            row = (d.step, d.topic, dump_json(d.data), d.trace_id, d.attempt, error, tb, now)
            dead.append((*row, int(d.id), d.attempt))
        if dead:  # before the delete: a dead letter keeps its delivery's keys
            conn.executemany(keys.DEAD_INSERT, dead)
        if acked:
            delete_claimed(conn, acked, acked_at)
        if retried:
            conn.executemany(keys.RETRY, retried)
        if released:
            conn.executemany(keys.RELEASE_RETRY, released)
        if batch.spans:
            store_spans(conn, batch.spans)
            trim(conn, "span_rows", self.settings.trace_retention)
        if batch.logs:
            conn.executemany(
                "INSERT INTO logs (ts, level, message, step, trace_id, span_id, fields)"
                " VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        e.ts,
                        e.level,
                        e.message,
                        e.step,
                        e.trace_id,
                        e.span_id,
                        dump_json(e.fields, default=str),
                    )
                    for e in batch.logs
                ],
            )
            trim(conn, "logs", self.settings.log_retention)

    def _enqueue(self, conn: sqlite3.Connection, messages: list[Message], now: float) -> None:
        rows: list[tuple[Any, ...]] = []
        expires = now + self.settings.dedup_ttl
        for m in messages:
            if m.key is not None:
                cur = conn.execute(
                    "INSERT INTO dedup (topic, key, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic, key) DO UPDATE SET expires_at = excluded.expires_at "
                    "WHERE dedup.expires_at < ?",
                    (m.topic, m.key, expires, now),
                )
                if cur.rowcount == 0:
                    continue
            if m.steps:
                data = m.raw or dump_payload(m.data, f"data emitted to {m.topic!r}")
                due = now if m.due is None else m.due  # a delayed emit waits like a retry
                rows.extend(
                    keys.row(m, s, data, due, now)
                    for s in m.steps
                    if not keys.debounced(conn, m, s, data, now)
                )
        insert_rows(conn, _INSERT_HEAD, rows)

    async def claim(self, wants: Mapping[str, int], lease: Mapping[str, float]) -> list[Delivery]:
        wants = {s: n for s, n in wants.items() if n > 0}
        if not wants:
            return []
        return await self._run(self._tx(lambda c: self._claim(c, wants, lease)))

    async def write_and_claim(
        self, batch: Batch, wants: Mapping[str, int], lease: Mapping[str, float]
    ) -> list[Delivery]:
        def both(conn: sqlite3.Connection) -> list[Delivery]:
            self._write(conn, batch)
            return self._claim(conn, wants, lease)

        claimed = await self._run(self._tx(both))
        if batch:
            self.storage_error = None
            if (behind := self._wal.committed()) is not None:
                await self._wal.wait_for(behind)
        return claimed

    def _claim(
        self, conn: sqlite3.Connection, wants: Mapping[str, int], lease: Mapping[str, float]
    ) -> list[Delivery]:
        now = self.clock()
        out: list[Delivery] = []
        for step, n in wants.items():
            limit = self.rate_limits.get(step)
            until = now + lease.get(step, self.settings.lease_seconds)
            if step in self.ordered:
                keys.rejoin(conn, step, now)
            if limit is not None and limit[2]:  # per rate key
                rows = rates.claim_rate_keyed(conn, step, n, limit, now, until, self._rate_windows)
            else:
                if limit is not None:
                    n = rates.rate_allowance(conn, step, n, limit, now)
                if n <= 0:
                    continue
                rows = conn.execute(
                    "UPDATE deliveries SET due = ?, attempt = attempt + 1, leased = 1 "
                    "WHERE id IN (SELECT id FROM deliveries d WHERE step = ? AND due <= ? "
                    f"AND {keys.CLAIMABLE} ORDER BY due LIMIT ?) "
                    f"RETURNING {keys.CLAIMED}",
                    (until, step, now, n),
                ).fetchall()
                if rows and limit is not None:
                    rates.rate_spent(conn, step, len(rows), now)
            # Positional: a class called with a keyword gets a new dict for it, per delivery.
            out.extend(
                Delivery(str(r[0]), r[1], r[2], load(r[3]), r[4], r[5], r[6], None, 0, r[7] or now)
                for r in rows
            )
        return out

    async def release(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        # Only while still at the attempt it was claimed with, as an outcome (see _write).
        rows = [(int(d.id), d.attempt) for d in deliveries]

        def release(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE deliveries SET due = 0, leased = 0, attempt = MAX(attempt - 1, 0) "
                "WHERE id = ? AND attempt = ?",
                rows,
            )

        await self._run(self._tx(release))

    async def replay(self, ids: list[str] | None = None) -> int:
        def replay(conn: sqlite3.Connection) -> int:
            # One parameter however many ids: SQLite takes at most 32,766 per statement.
            where, args = (
                ("", ())
                if ids is None
                else (
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(map(int, ids))),),
                )
            )
            now = self.clock()
            cur = conn.execute(f"{keys.REPLAY} {where} ORDER BY id", (now, now, *args))
            conn.execute(f"DELETE FROM dead_letters {where}", args)
            return cur.rowcount

        if ids is not None and not valid_ids(ids):
            return 0
        return await self._run(self._tx(replay))

    # -- cron --------------------------------------------------------------------------------
    async def try_fire(self, step: str, tick: float, message: Message) -> bool:
        def fire(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT tick FROM cron_fires WHERE step = ?", (step,)).fetchone()
            if row is not None and row[0] >= tick:
                return False
            conn.execute(
                "INSERT INTO cron_fires (step, tick, fired_at) VALUES (?, ?, ?) ON CONFLICT "
                "(step) DO UPDATE SET tick = excluded.tick, fired_at = excluded.fired_at",
                (step, tick, time.time()),
            )
            self._enqueue(conn, [message], self.clock())
            return True

        return await self._run(self._tx(fire))

    async def last_fire(self, step: str) -> float | None:
        row = await self._run(
            lambda c: c.execute("SELECT tick FROM cron_fires WHERE step = ?", (step,)).fetchone()
        )
        return None if row is None else float(row[0])

    async def prune(self) -> None:
        s = self.settings

        def prune(conn: sqlite3.Connection) -> None:
            now = time.time()
            # Spans and logs are trimmed as they are written; this catches a lowered cap.
            trim(conn, "span_rows", s.trace_retention)
            trim(conn, "logs", s.log_retention)
            dropped = conn.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
                (s.dead_retention,),
            ).rowcount
            if dropped:
                log.warning(
                    "dropped the %d oldest dead letters (STEPLINE_DEAD_RETENTION=%d)",
                    dropped,
                    s.dead_retention,
                )
            conn.execute("DELETE FROM dedup WHERE expires_at < ?", (now,))
            conn.execute(
                "DELETE FROM state WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
            )

        await self._run(self._tx(prune))
        # One small step per transaction, so another process's writer waits milliseconds.
        while await self._run(self._tx(release_free_pages)):
            pass
