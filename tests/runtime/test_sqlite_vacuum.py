"""A SQLite file created before incremental auto-vacuum: a serving process says so when it
opens it (a one-shot command does not), and `stepline db vacuum` converts it (refusing while
another process has the file open)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.backends.sqlite import SQLiteBackend
from app.cli import app as cli
from app.settings import Settings
from app.testing import Harness
from app.types import Batch, Message, Outcome
from tests.support import write_steps

STEP = """
    config = {"type": "event", "name": "A", "subscribes": ["t"], "emits": []}

    async def handler(data, ctx):
        pass
"""


def _old_file(db: Path) -> None:
    """A database as an older version created it: WAL, and a table before any auto_vacuum."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE legacy (x)")
    conn.close()


def _pragma(db: Path, name: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


async def _backlog_settled(db: Path) -> None:
    """Write 3,000 large deliveries and acknowledge them all but one: pages fall free."""
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    try:
        pad = "x" * 2000
        await backend.write(
            Batch(messages=[Message("t", {"i": i, "pad": pad}, "tr", ("A",)) for i in range(3000)])
        )
        claimed = await backend.claim({"A": 3000}, {"A": 60.0})
        await backend.write(Batch(outcomes=[Outcome(d, "ok") for d in claimed]))
        await backend.write(Batch(messages=[Message("t", {"i": -1}, "tr", ("A",))]))
        await backend.prune()
    finally:
        await backend.close()


def _vacuum(db: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("STEPLINE_DB", str(db))
    monkeypatch.setenv("STEPLINE_BACKEND", "sqlite")
    return CliRunner().invoke(cli, ["db", "vacuum"])


async def test_an_old_file_is_named_at_open_and_shrinks_after_db_vacuum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "stepline.db"
    _old_file(db)
    with caplog.at_level(logging.WARNING, logger="stepline.sqlite"):
        await _backlog_settled(db)
        assert not [r for r in caplog.records if "auto-vacuum" in r.getMessage()]
        served = SQLiteBackend(Settings(db=db))  # as `stepline start`, `dev` or `worker` do
        await served.open()
        served.serving()
        served.serving()
        await served.close()
    [warning] = [r.getMessage() for r in caplog.records if "auto-vacuum" in r.getMessage()]
    assert str(db) in warning and "`stepline db vacuum`" in warning
    # Mode NONE: the sweep cannot give the free pages back.
    assert _pragma(db, "auto_vacuum") == 0 and _pragma(db, "freelist_count") > 1000
    pages = _pragma(db, "page_count")

    result = _vacuum(db, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "converted" in result.output
    assert _pragma(db, "auto_vacuum") == 2  # INCREMENTAL
    assert _pragma(db, "page_count") < pages / 2, (pages, _pragma(db, "page_count"))

    # The data survived, and the file opens without the warning now.
    caplog.clear()
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    backend.serving()
    try:
        [left] = await backend.claim({"A": 10}, {"A": 60.0})
        assert left.data == {"i": -1}
    finally:
        await backend.close()
    assert not [r for r in caplog.records if "auto-vacuum" in r.getMessage()]

    again = _vacuum(db, monkeypatch)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_read_commands_do_not_warn_of_an_old_file_a_server_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "stepline.db"
    _old_file(db)
    steps = write_steps(tmp_path / "steps", {"a_step.py": STEP})
    env = {**os.environ, "STEPLINE_DB": str(db), "STEPLINE_STEPS": str(steps)}
    env.pop("STEPLINE_BACKEND", None)
    for args in (["steps"], ["dlq", "list"], ["state", "list", "g"], ["emit", "t", "{}"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert "auto-vacuum" not in done.stdout + done.stderr, (args, done.stderr)
    with caplog.at_level(logging.WARNING, logger="stepline.sqlite"):

        async def serve() -> None:
            async with Harness([steps], db=db):  # starts as `stepline start` does
                pass

        asyncio.run(serve())
    [warning] = [r.getMessage() for r in caplog.records if "auto-vacuum" in r.getMessage()]
    assert str(db) in warning and "`stepline db vacuum`" in warning


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("SELECT count(*) FROM legacy").fetchone()  # open, then idle like a server
print("open", flush=True)
sys.stdin.read()
"""


def test_db_vacuum_refuses_while_another_process_has_the_file_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    db = tmp_path / "stepline.db"
    _old_file(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = _vacuum(db, monkeypatch)
        assert result.exit_code == 1
        assert "open in another process" in result.output and "stop them" in result.output
        assert _pragma(db, "auto_vacuum") == 0  # nothing changed
    finally:
        holder.communicate("", timeout=10)
    # Once it is gone, the same command converts the file.
    assert _vacuum(db, monkeypatch).exit_code == 0
    assert _pragma(db, "auto_vacuum") == 2


def test_db_vacuum_without_a_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    result = _vacuum(tmp_path / "missing.db", monkeypatch)
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "missing.db").exists()  # not created by asking
