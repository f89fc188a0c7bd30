"""Log lines as an operator's collector reads them: STEPLINE_LOG_FORMAT=json gives one JSON
object per line (step, trace id, attempt, fields); the text format shows the trace id too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logfmt import JsonFormatter, TextFormatter, install_formatter
from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "noisy_step.py": """
        config = {"type": "event", "name": "Noisy", "subscribes": ["noise"], "retries": 2}

        async def handler(data, ctx):
            ctx.logger.info("charging order", order=data["id"], amount=12.5)
            if ctx.attempt == 1:
                raise RuntimeError("card declined \\ud800 once")
    """,
}


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    yield out, handler
    root.removeHandler(handler)
    root.setLevel(old)


async def run_noisy(tmp_path) -> str:
    steps = write_steps(tmp_path / "steps", STEPS)
    async with Harness([steps], db=tmp_path / "t.db") as h:
        trace_id = await h.emit("noise", {"id": 42})
        await h.drain()
    return trace_id


async def test_json_lines_parse_and_carry_step_trace_attempt_and_fields(tmp_path, captured):
    out, handler = captured
    handler.setFormatter(JsonFormatter())
    trace_id = await run_noisy(tmp_path)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    charging = [r for r in records if r["message"] == "charging order"]
    assert [r["attempt"] for r in charging] == [1, 2]
    assert all(r["step"] == "Noisy" and r["trace_id"] == trace_id for r in charging)
    assert charging[0]["fields"] == {"order": 42, "amount": 12.5}
    failed = [r for r in records if r["message"].startswith("attempt 1 of 2 failed")]
    assert failed and failed[0]["level"] == "error" and "card declined" in str(failed[0])


async def test_text_lines_show_the_trace_id(tmp_path, captured):
    out, handler = captured
    handler.setFormatter(TextFormatter())
    trace_id = await run_noisy(tmp_path)
    lines = [line for line in out.getvalue().splitlines() if "charging order" in line]
    assert len(lines) == 2
    assert all(f"trace={trace_id}" in line for line in lines)
    assert "attempt=2" in lines[1] and "attempt=" not in lines[0]


def test_a_traceback_stays_inside_its_json_line():
    try:
        raise ValueError("bad \ud800 input")
    except ValueError:
        record = logging.LogRecord(
            "stepline.engine",
            logging.ERROR,
            __file__,
            1,
            "run failed for %s",
            ("Step",),
            exc_info=True,
        )
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "run failed for Step"
    assert "ValueError" in parsed["exc"]


def test_install_formatter_leaves_other_handlers_alone():
    root = logging.getLogger()
    theirs = logging.StreamHandler(io.StringIO())
    theirs.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(theirs)
    try:
        install_formatter("json")
        assert not isinstance(theirs.formatter, JsonFormatter)
    finally:
        root.removeHandler(theirs)
