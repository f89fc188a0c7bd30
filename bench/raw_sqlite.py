"""The raw SQLite ceiling for the 3-step chain: the same queue done by hand with stdlib sqlite3.

    .venv/bin/python bench/raw_sqlite.py [--chains 10000]

What Stepline does per delivery, and nothing else: WAL, `synchronous=NORMAL`, a lease claim of
100 due rows in one transaction, then one transaction that deletes (acknowledges) them and
inserts their emits. Payloads are decoded and re-encoded as JSON at each hop, as a handler gets
and emits them. No spans, no retries, no fan-out: so Stepline's ratio to this is its overhead.
bench/chain.py runs it beside Stepline in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

from _util import interrupt_on_sigterm, scratch

__all__ = ["raw_sqlite_chain"]

CLAIM = 100
LEASE = 30.0


def raw_sqlite_chain(chains: int, tmp: Path, cpu: list[float] | None = None) -> float:
    """Chains per second from the first enqueue to the last completion, each id checked; the
    CPU microseconds per chain go to `cpu`."""
    with scratch("raw", tmp) as run_dir:
        return _run(chains, run_dir / "raw.db", cpu)


def _run(chains: int, db: Path, cpu: list[float] | None = None) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE q (id INTEGER PRIMARY KEY, hop INTEGER NOT NULL, "
            "data TEXT NOT NULL, due REAL NOT NULL)"
        )
        conn.execute("CREATE INDEX q_due ON q (due)")
        seen: list[int] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, chains, 1000):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO q (hop, data, due) VALUES (0, ?, 0)",
                [(json.dumps({"i": i}),) for i in range(start, min(chains, start + 1000))],
            )
            conn.execute("COMMIT")
        while len(seen) < chains:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            claimed = conn.execute(
                "UPDATE q SET due = ? WHERE id IN "
                "(SELECT id FROM q WHERE due <= ? ORDER BY due LIMIT ?) RETURNING id, hop, data",
                (now + LEASE, now, CLAIM),
            ).fetchall()
            conn.execute("COMMIT")
            emits = []
            for _, hop, data in claimed:
                value = json.loads(data)
                if hop < 2:
                    emits.append((hop + 1, json.dumps(value), now))
                else:
                    seen.append(value["i"])
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM q WHERE id = ?", [(row[0],) for row in claimed])
            conn.executemany("INSERT INTO q (hop, data, due) VALUES (?, ?, ?)", emits)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        if cpu is not None:
            cpu.append((time.process_time() - cpu_started) / chains * 1e6)
    finally:
        conn.close()
    if sorted(seen) != list(range(chains)):
        raise SystemExit("raw SQLite chain: an id was lost or handled twice")
    return chains / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=10_000)
    args = parser.parse_args()
    interrupt_on_sigterm()
    with scratch("raw") as tmp:
        rate = raw_sqlite_chain(args.chains, tmp)
    print(f"raw SQLite queue, {args.chains:,} chains: {rate:,.0f} chains/s")


if __name__ == "__main__":
    main()
