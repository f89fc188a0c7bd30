"""The Workbench shows flow control: a delayed emit is listed under Scheduled in the Events
view with its due time, behind a backlog of older deliveries too, and the Flows view shows a
step's keys and limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server
from tests.support import write_steps

STEPS = {
    "remind_step.py": """
        config = {"type": "event", "name": "Remind", "flows": ["reminders"],
                  "subscribes": ["remind"], "emits": [], "concurrency": 2,
                  "key": "account", "concurrency_per_key": 1,
                  "rate_limit": {"per_minute": 5, "key": "account"}}

        async def handler(data, ctx):
            ctx.logger.info("reminded", account=data["account"])
    """,
    "held_step.py": """
        import asyncio

        config = {"type": "event", "name": "Held", "flows": ["reminders"],
                  "subscribes": ["held"], "emits": [], "key": "k", "concurrency_per_key": 1}

        async def handler(data, ctx):
            # Holds its key until the test lets go: the deliveries behind it stay queued.
            while not await ctx.state.get("held", "go"):
                await asyncio.sleep(0.05)
    """,
}

LIMITS = "2 at a time per process; key account: 1 at a time; at most 5 per minute per key account"


@pytest.fixture
def reminders(launch_server: Callable[..., Server], tmp_path: Path) -> Server:
    return launch_server("dev", steps=write_steps(tmp_path / "steps", STEPS))


def test_a_delayed_emit_shows_as_scheduled_with_its_due_time(page: Any, reminders: Server) -> None:
    # 210 older deliveries, more than the Events view lists oldest first.
    with httpx.Client(base_url=reminders.url) as client:
        for i in range(210):
            sent = client.post(
                "/_stepline/emit", json={"topic": "held", "data": {"k": "x", "i": i}}
            )
            sent.raise_for_status()
    page.goto(f"{reminders.url}/workbench#/events")
    page.get_by_label("Topic").fill("remind")
    page.get_by_label("Data (JSON)").fill('{"account": "acme"}')
    page.get_by_label("Delay (seconds)").fill("3600")
    page.get_by_role("button", name="Emit", exact=True).click()

    row = page.locator("section.scheduled tbody tr", has_text="Remind")
    expect(row).to_contain_text("scheduled")
    expect(row).to_contain_text(re.compile(r"\(in (59|60) min\)"))
    [due] = [q["due"] for q in httpx.get(f"{reminders.url}/_stepline/events").json()["scheduled"]]
    clock = page.evaluate(
        "(d) => { const t = new Date(d * 1000); return [t.getHours(), t.getMinutes(), "
        "t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':'); }",
        due,
    )
    expect(row.locator("td.due")).to_contain_text(clock)
    expect(page.locator("section.scheduled h2")).to_contain_text("1")
    queued = page.locator("section", has=page.get_by_role("heading", name="Queued and in flight"))
    expect(queued.locator("tbody tr", has_text="Held").first).to_be_visible()
    expect(queued.locator("tbody tr", has_text="Remind")).to_have_count(0)

    page.goto(f"{reminders.url}/workbench#/flows/reminders")
    page.locator('svg.graph [data-step="Remind"]').click()
    detail = page.locator(".detail")
    expect(detail.get_by_role("heading", name=re.compile("Remind"))).to_be_visible()
    expect(detail.locator("dd", has_text="key account")).to_have_text(LIMITS)
    expect(detail).to_contain_text("1 scheduled")
    # A due time on another day than today is shown with its date (an hour before midnight).
    expect(detail).to_contain_text(re.compile(rf"next (\d{{4}}-\d\d-\d\d )?{clock}"))
    go = httpx.put(f"{reminders.url}/_stepline/state/held/go", json={"value": True})
    go.raise_for_status()
