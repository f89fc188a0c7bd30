"""The command line's own words: each command's --help as a terminal shows it, and the one-line
errors a start-up gives for a bad setting or a port in use, run as real `stepline` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def help_text(args: list[str], columns: int) -> str:
    """`stepline ARGS --help` as a terminal of `columns` shows it."""
    done = subprocess.run(
        [sys.executable, "-m", "app", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (["emit"], ["Usage: stepline emit [OPTIONS] TOPIC DATA", "--key", "KEY", "--steps", "DIR"]),
        (["dlq", "list"], ["--limit", "Show at most this many"]),
        (["state", "set"], ["GROUP KEY VALUE", "--ttl"]),
        (["dev"], ["--port", "PORT", "--host", "HOST", "127.0.0.1"]),
        (["start"], ["--workers", " N ", "0.0.0.0", "STEPLINE_VERIFY_CREDENTIALS=0"]),
        (["cron", "run"], ["NAME", "The cron step's name"]),
        (["db", "vacuum"], ["auto_vacuum=INCREMENTAL", "Stop every process", "Exit status"]),
        (["gmail", "train"], ["--spam", " DIR ", "--ham", "--limit", " N "]),
    ],
)
def test_help_shows_names_not_python_types(args, shows):
    shown = help_text(args, 120)
    for text in shows:
        assert text in shown, shown
    for placeholder in ("<bool>", "<str>", "<int>", "<float>", "list[Path]", "{"):
        assert placeholder not in shown.replace("'{\"n\": 1}'", ""), shown


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["dev"], "and /_stepline on http://HOST:PORT, and runs event and cron handlers"),
        (["start"], "is misconfigured, listing every problem, one a line. The Workbench"),
        (["dlq"], "attempts, the error's first line. --json adds"),
    ],
)
def test_help_paragraphs_wrap_to_the_terminal_not_to_the_docstring(args, sentence):
    # A docstring wrapped at 95 columns printed ragged: its own line breaks were kept, so on a
    # wide terminal a sentence still broke where the source did.
    shown = help_text(args, 200)
    assert any(sentence in line for line in shown.splitlines()), shown


def stepline_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stepline ARGS` run in `project` (its .env read there), none of the caller's STEPLINE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


@pytest.mark.parametrize("command", [["dev"], ["worker"], ["steps"]])
def test_an_unknown_log_level_is_a_one_line_error(tmp_path, command):
    (tmp_path / "steps").mkdir()
    (tmp_path / ".env").write_text("STEPLINE_LOG_LEVEL=LOUD\n")
    done = stepline_in(tmp_path, *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: STEPLINE_LOG_LEVEL: ") and "'DEBUG'" in line, line


@pytest.mark.parametrize("command", ["dev", "start"])
def test_a_port_in_use_is_a_one_line_error_naming_it_and_the_fix(tmp_path, command):

    (tmp_path / "steps").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = stepline_in(tmp_path, command, "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port or STEPLINE_PORT" in line


def test_steps_help_gives_the_unit_of_the_json_times():
    # The tables show a due time in UTC and how far off; --json keeps the number, whose unit
    # a script has to be told.
    text = " ".join(help_text(["steps"], 120).replace("│", " ").split())
    assert "(next_due, due, created_at) are Unix time: seconds since 1970-01-01 UTC" in text
