"""The Events view with a step name longer than its column: every table keeps its columns
inside its own pane, so the queue counts stay readable beside the emit form."""

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
            raise RuntimeError("boom")
    """,
}

# Each table's width past its pane, and the queue table's right edge past the emit form's left.
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
