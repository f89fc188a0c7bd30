"""A step name longer than its column, and an error of one 300-character word: every table of
the Events, Traces and Logs views keeps its columns inside its pane, so the queue counts stay
beside the emit form and the Trace column on screen."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import Server
from tests.support import write_steps

# A legal step name with no break opportunity for 60 characters (dots and hyphens are allowed).
LONG = "FlakyStepWithAVeryLongNameThatGoesOnAndOnAndOnForeverAndEver.more-words_here"

STEPS = {
    "long_step.py": f"""
        config = {{"type": "event", "name": "{LONG}", "subscribes": ["job.run"],
                  "emits": [], "retries": 1}}

        async def handler(data, ctx):
            raise RuntimeError("boom " + "x" * 300)
    """,
}

# How far each table of the view reaches past its pane (0 or less: it fits).
TABLES = """() => [...document.querySelectorAll("#view table")].map((t) =>
  t.scrollWidth - t.parentElement.clientWidth)"""
# The same for the Events view, and the queue table's right edge past the emit form's left.
OVERFLOW = """() => {
  const tables = [...document.querySelectorAll("#view table")].map((t) =>
    t.scrollWidth - t.parentElement.clientWidth);
  const queues = document.querySelector(".events-grid table").getBoundingClientRect();
  const form = document.querySelector(".events-grid > :last-child").getBoundingClientRect();
  return {tables, overlap: queues.right - form.left};
}"""


def served_with_one_event(
    launch_server: Callable[..., Server], tmp_path: Path, steps: dict[str, str], topic: str
) -> Server:
    """A `stepline dev` server of `steps` that has been sent one event of `topic`."""
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", steps))
    httpx.post(f"{server.url}/_stepline/emit", json={"topic": topic, "data": {}}).raise_for_status()
    return server


def test_a_long_step_name_keeps_the_queue_columns_visible(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", STEPS))
    with httpx.Client(base_url=server.url) as client:
        client.post("/_stepline/emit", json={"topic": "job.run", "data": {}}).raise_for_status()
        client.post(
            "/_stepline/emit", json={"topic": "job.run", "data": {}, "delay": 3600}
        ).raise_for_status()
    page.goto(f"{server.url}/workbench#/events")
    expect(page.locator("section.dead tbody tr", has_text="boom").first).to_be_visible()
    expect(page.locator("section.scheduled tbody tr", has_text="job.run").first).to_be_visible()
    measured = page.evaluate(OVERFLOW)
    assert measured["overlap"] <= 0, measured
    assert all(extra <= 0 for extra in measured["tables"]), measured
    expect(page.get_by_role("columnheader", name="Dead", exact=True)).to_be_visible()


def test_a_long_step_name_and_error_keep_traces_and_logs_in_their_pane(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = served_with_one_event(launch_server, tmp_path, STEPS, "job.run")
    page.goto(f"{server.url}/workbench#/traces")
    expect(page.locator("table.traces tbody tr", has_text="failed").first).to_be_visible()
    assert all(extra <= 0 for extra in page.evaluate(TABLES)), page.evaluate(TABLES)
    expect(page.locator("table.traces tbody tr a.mono").first).to_be_in_viewport()
    page.goto(f"{server.url}/workbench#/logs")
    expect(page.locator("table.logs tbody tr", has_text="xxxx").first).to_be_visible()
    assert all(extra <= 0 for extra in page.evaluate(TABLES)), page.evaluate(TABLES)
    expect(page.locator("table.logs tbody tr a.mono").first).to_be_in_viewport()


# The detail pane's table of recent runs, against the pane's content box.
RUNS_PAST_PANE = """() => {
  const table = document.querySelector("table.runs");
  const pane = table.closest(".detail");
  const style = getComputedStyle(pane);
  const scrollbar = pane.offsetWidth - pane.clientWidth - 2 * parseFloat(style.borderRightWidth);
  const inner = pane.getBoundingClientRect().right - parseFloat(style.paddingRight)
    - parseFloat(style.borderRightWidth) - scrollbar;
  return table.getBoundingClientRect().right - inner;
}"""


def test_runs_of_another_day_keep_the_trace_column_in_the_step_pane(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    # A run of an earlier day shows its date ("2026-12-01 23:43:10.806"), which made the
    # table too wide for the 340 px pane at 1440x900 and hid the Trace column.
    server = served_with_one_event(launch_server, tmp_path, STEPS, "job.run")
    page.clock.set_fixed_time(time.time() + 3 * 24 * 3600)  # the browser lives 3 days later
    page.goto(f"{server.url}/workbench#/flows/default")
    page.locator("g.node[data-step]").first.click()
    expect(page.locator("table.runs tbody tr").first).to_contain_text(
        re.compile(r"\d{4}-\d\d-\d\d")
    )
    assert page.evaluate(RUNS_PAST_PANE) <= 0.5, page.evaluate(RUNS_PAST_PANE)
    assert page.evaluate(CUT_STEPS, "table.runs td .trace-ref a") == []


def test_runs_of_today_keep_each_trace_link_on_one_line(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    # The trace cell may wrap (the copy button below the link), but the short id itself
    # must not break at its ellipsis into 'baa46207…' over '5900'.
    server = served_with_one_event(launch_server, tmp_path, STEPS, "job.run")
    page.goto(f"{server.url}/workbench#/flows/default")
    page.locator("g.node[data-step]").first.click()
    expect(page.locator("table.runs tbody tr").first).to_be_visible()
    assert page.evaluate(CUT_STEPS, "table.runs td .trace-ref a") == []
    assert page.evaluate(RUNS_PAST_PANE) <= 0.5, page.evaluate(RUNS_PAST_PANE)


# Every step cell of the table whose text does not sit on one line (a name cut mid-word).
CUT_STEPS = """(selector) => [...document.querySelectorAll(selector)].filter((td) => {
  const range = document.createRange();
  range.selectNodeContents(td);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
}).map((td) => td.textContent)"""

NORMAL = {
    "normal_step.py": """
        config = {"type": "event", "name": "GmailProcessEmail", "subscribes": ["mail.new"],
                  "emits": [], "retries": 1}

        async def handler(data, ctx):
            raise RuntimeError("Gmail is not connected (.stepline/gmail-token.json does not "
                               "exist): run `stepline gmail connect` " * 3)
    """,
}


def test_a_normal_step_name_stays_whole_beside_long_fields_in_logs(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    # Breaking step cells anywhere (for a name of one 77-character word) let the table's
    # layout give a wide Fields column the room, cutting an ordinary name as 'GmailProc|essEmail'.
    server = served_with_one_event(launch_server, tmp_path, NORMAL, "mail.new")
    page.goto(f"{server.url}/workbench#/logs")
    expect(page.locator("table.logs tbody tr", has_text="gmail connect").first).to_be_visible()
    assert page.evaluate(CUT_STEPS, "table.logs td.step") == []
    page.goto(f"{server.url}/workbench#/traces")
    expect(page.locator("table.traces tbody tr", has_text="failed").first).to_be_visible()
    assert page.evaluate(CUT_STEPS, "table.traces td:is(.step, .steps)") == []
