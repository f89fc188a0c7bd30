"""A step name longer than its column, and an error of one 300-character word: every table of
the Events, Traces and Logs views keeps its columns inside its pane, so the queue counts stay
beside the emit form and the Trace column on screen."""

from __future__ import annotations

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
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", STEPS))
    httpx.post(
        f"{server.url}/_stepline/emit", json={"topic": "job.run", "data": {}}
    ).raise_for_status()
    page.goto(f"{server.url}/workbench#/traces")
    expect(page.locator("table.traces tbody tr", has_text="failed").first).to_be_visible()
    assert all(extra <= 0 for extra in page.evaluate(TABLES)), page.evaluate(TABLES)
    expect(page.locator("table.traces tbody tr a.mono").first).to_be_in_viewport()
    page.goto(f"{server.url}/workbench#/logs")
    expect(page.locator("table.logs tbody tr", has_text="xxxx").first).to_be_visible()
    assert all(extra <= 0 for extra in page.evaluate(TABLES)), page.evaluate(TABLES)
    expect(page.locator("table.logs tbody tr a.mono").first).to_be_in_viewport()
